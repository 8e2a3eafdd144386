// Failure messages of QCOMPARE show std::string values.
#pragma once

#include <QtTest>

#include <string>

namespace QTest {
template <>
inline char* toString(const std::string& value) {
  return qstrdup(value.c_str());
}
}  // namespace QTest
