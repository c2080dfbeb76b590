// Opens a model directory from C++ and prints its tensor count, after checking that the
// installed header and library are the same version.
#include <cstdio>
#include <cstring>

#include "stload.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
        return 2;
    }
    char header_version[32];
    std::snprintf(header_version, sizeof header_version, "%d.%d.%d", STLOAD_VERSION_MAJOR,
                  STLOAD_VERSION_MINOR, STLOAD_VERSION_PATCH);
    if (std::strcmp(header_version, stload_version()) != 0) {
        std::fprintf(stderr, "header %s, library %s\n", header_version, stload_version());
        return 1;
    }
    stload_model *model = nullptr;
    stload_error *err = nullptr;
    if (stload_open_dir(argv[1], nullptr, &model, &err) != STLOAD_OK) {
        std::fprintf(stderr, "open: %s\n", stload_error_message(err));
        stload_error_free(err);
        return 1;
    }
    std::printf("%zu tensors\n", stload_model_len(model));
    stload_model_free(model);
    return 0;
}
