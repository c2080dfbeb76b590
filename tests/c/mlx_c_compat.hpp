// Force-included into every C++ file of the mlx-c build by build_mlx_c.sh, to build the
// mlx-c release of the mlx-sys crate against the MLX of the Python wheel on a plain Debian.
// Used for building the interop tests only; it is never part of stload.
//
// 1. mlx-c formats a few error messages with C++20's std::format, which GCC's standard library
//    only has from GCC 13 on; with an older one a small stand-in replaces each "{}" with the
//    next argument.
// 2. mlx-c 0.7.0 is written against MLX 0.32.2; MLX 0.32.4 added a `global_scale` parameter
//    to gather_qmm before `sorted_indices`. An overload with the older parameter list forwards
//    to the newer function without a global scale.
#ifndef STLOAD_MLX_C_COMPAT_HPP
#define STLOAD_MLX_C_COMPAT_HPP

#include <version>

#if !defined(__cpp_lib_format)
#include <sstream>
#include <string>
#include <string_view>

namespace std {
template <class... Args>
string format(string_view fmt, const Args &...args) {
  ostringstream out;
  auto next = [&](const auto &value) {
    auto at = fmt.find("{}");
    if (at == string_view::npos) {
      return;
    }
    out << fmt.substr(0, at) << value;
    fmt.remove_prefix(at + 2);
  };
  (next(args), ...);
  out << fmt;
  return out.str();
}
}  // namespace std
#endif

// CMake's compiler check compiles with this header forced in but without MLX on the include
// path: only the real build sees (and needs) MLX.
#if __has_include("mlx/mlx.h")
#include "mlx/mlx.h"

#if MLX_VERSION_NUMERIC > 32002
namespace mlx::core {
inline array gather_qmm(const array &x, const array &w, const array &scales,
                        const std::optional<array> &biases, std::optional<array> lhs_indices,
                        std::optional<array> rhs_indices, bool transpose,
                        std::optional<int> group_size, std::optional<int> bits,
                        const std::string &mode, bool sorted_indices, StreamOrDevice s) {
  return gather_qmm(x, w, scales, biases, std::move(lhs_indices), std::move(rhs_indices),
                    transpose, group_size, bits, mode, std::nullopt, sorted_indices, s);
}
}  // namespace mlx::core
#endif
#endif

#endif
