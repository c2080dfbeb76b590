module stload.dev/stload

go 1.19
