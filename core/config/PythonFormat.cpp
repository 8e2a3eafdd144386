#include "config/PythonFormat.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace sae {

namespace {

// Non-finite values print the same in repr() and format(): "inf", "-inf", "nan".
bool nonFinite(double x, std::string& out) {
  if (std::isnan(x)) {
    out = "nan";  // Python never prints a sign for NaN
    return true;
  }
  if (std::isinf(x)) {
    out = x < 0 ? "-inf" : "inf";
    return true;
  }
  return false;
}

// Python pads exponents to at least two digits ("e-05", "e+16").
std::string exponentText(int exponent) {
  std::string digits = std::to_string(std::abs(exponent));
  if (digits.size() < 2) digits.insert(0, "0");
  return (exponent < 0 ? "e-" : "e+") + digits;
}

}  // namespace

std::string PythonFormat::repr(double x) {
  std::string special;
  if (nonFinite(x, special)) return special;

  // std::to_chars without a precision gives the shortest digit string that reads back as the
  // same double, choosing the closest one on ties: the same digits as Python's repr (David
  // Gay's shortest mode). Only the layout differs, so take the digits and lay them out here.
  char buffer[64];
  const auto result =
      std::to_chars(buffer, buffer + sizeof buffer, x, std::chars_format::scientific);
  std::string text(buffer, result.ptr);  // e.g. "-5e-05", "4.194304e+03", "0e+00"

  const bool negative = !text.empty() && text[0] == '-';
  if (negative) text.erase(0, 1);
  const size_t ePos = text.find('e');
  const int exponent = std::stoi(text.substr(ePos + 1));
  std::string digits;
  for (size_t i = 0; i < ePos; ++i) {
    if (text[i] != '.') digits += text[i];
  }

  std::string out = negative ? "-" : "";
  // float_repr_style 'short': positional for 1e-4 <= |x| < 1e16, scientific otherwise.
  if (exponent < -4 || exponent >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += exponentText(exponent);
    return out;
  }
  if (exponent < 0) {
    out += "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
    return out;
  }
  const size_t integerDigits = static_cast<size_t>(exponent) + 1;
  if (digits.size() <= integerDigits) {
    out += digits + std::string(integerDigits - digits.size(), '0') + ".0";
  } else {
    out += digits.substr(0, integerDigits) + "." + digits.substr(integerDigits);
  }
  return out;
}

std::string PythonFormat::scientific(double x, int precision) {
  std::string special;
  if (nonFinite(x, special)) return special;
  // C's %e rounds correctly and also pads the exponent to two digits, exactly like Python.
  char buffer[512];
  std::snprintf(buffer, sizeof buffer, "%.*e", precision < 0 ? 6 : precision, x);
  return buffer;
}

std::string PythonFormat::integer(int64_t n) {
  return std::to_string(n);
}

}  // namespace sae
