// The few GoogleTest macros test_panns.cpp uses, for machines without GoogleTest.
// Prints "N passed, N failed" last and exits non-zero on a failure.
#ifndef PANNS_MINI_GTEST_HPP
#define PANNS_MINI_GTEST_HPP

#include <cmath>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

namespace mini_gtest {
struct Test {
  std::string name;
  std::function<void()> fn;
};
inline std::vector<Test>& registry() {
  static std::vector<Test> tests;
  return tests;
}
inline int& failures() {
  static int n = 0;
  return n;
}
struct Register {
  Register(const char* suite, const char* name, std::function<void()> fn) {
    registry().push_back({std::string(suite) + "." + name, std::move(fn)});
  }
};
inline bool fail(const char* file, int line, const std::string& what) {
  std::cerr << file << ":" << line << ": Failure: " << what << "\n";
  failures()++;
  return false;
}
}  // namespace mini_gtest

#define TEST(suite, name)                                                          \
  static void suite##_##name##_body();                                             \
  static mini_gtest::Register suite##_##name##_reg(#suite, #name, suite##_##name##_body); \
  static void suite##_##name##_body()

#define MINI_CHECK(cond, text) ((cond) ? true : mini_gtest::fail(__FILE__, __LINE__, text))
#define EXPECT_TRUE(c) MINI_CHECK((c), #c)
#define EXPECT_FALSE(c) MINI_CHECK(!(c), "!(" #c ")")
#define EXPECT_EQ(a, b) MINI_CHECK((a) == (b), #a " == " #b)
#define EXPECT_NE(a, b) MINI_CHECK((a) != (b), #a " != " #b)
#define EXPECT_LT(a, b) MINI_CHECK((a) < (b), #a " < " #b)
#define EXPECT_LE(a, b) MINI_CHECK((a) <= (b), #a " <= " #b)
#define EXPECT_GE(a, b) MINI_CHECK((a) >= (b), #a " >= " #b)
#define EXPECT_NEAR(a, b, eps) MINI_CHECK(std::fabs((a) - (b)) <= (eps), #a " ~= " #b)
#define ASSERT_TRUE(c) if (!EXPECT_TRUE(c)) return
#define ASSERT_EQ(a, b) if (!EXPECT_EQ(a, b)) return
#define ASSERT_NE(a, b) if (!EXPECT_NE(a, b)) return
#define EXPECT_NO_THROW(stmt)                                                    \
  try {                                                                          \
    stmt;                                                                        \
  } catch (...) {                                                                \
    mini_gtest::fail(__FILE__, __LINE__, #stmt " threw");                        \
  }
#define GTEST_SKIP() return

int main() {
  int passed = 0, failed = 0;
  for (const auto& t : mini_gtest::registry()) {
    int before = mini_gtest::failures();
    try {
      t.fn();
    } catch (const std::exception& e) {
      mini_gtest::fail(__FILE__, __LINE__, t.name + " threw " + e.what());
    }
    bool ok = mini_gtest::failures() == before;
    std::cout << (ok ? "[ OK ] " : "[FAIL] ") << t.name << "\n";
    (ok ? passed : failed)++;
  }
  std::cout << passed << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}

#endif
