// Command replacer applies Go's strings.Replacer to test cases, as the oracle for stload's
// rename. It reads a JSON array of {"pairs": [old, new, ...], "input": hex} from stdin and
// writes a JSON array of hex-encoded results (hex, because an empty old string can split a
// UTF-8 character and Go keeps the raw bytes).
package main

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
)

type testCase struct {
	Pairs []string `json:"pairs"`
	Input string   `json:"input"`
}

func main() {
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	out := make([]string, len(cases))
	for i, c := range cases {
		input, err := hex.DecodeString(c.Input)
		if err != nil {
			panic(err)
		}
		out[i] = hex.EncodeToString([]byte(strings.NewReplacer(c.Pairs...).Replace(string(input))))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		panic(err)
	}
}
