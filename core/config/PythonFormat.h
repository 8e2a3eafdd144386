#pragma once
// Python's number formatting, so that run names and the verbose preamble come out
// byte-identical to SAELens's f-strings.
#include <cstdint>
#include <string>

namespace sae {

class PythonFormat {
 public:
  // str(x) / repr(x) for a float: shortest round-trip digits; scientific when the exponent
  // is < -4 or >= 16 ("5e-05", "0.005", "1e+16", "1048576.0", "4194.304").
  static std::string repr(double x);
  // format(x, ".{precision}e") / "{:3.3e}" ("8.192e+07").
  static std::string scientific(double x, int precision);
  // str(n) for an int.
  static std::string integer(int64_t n);
};

}  // namespace sae
