// The doctest main of every test area. A run that passes but skipped tests for want of the
// reference fixtures exits with 77, which CTest reports as a skip rather than a pass.

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <common/fixtures.hpp>

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int result = context.run();
  if (context.shouldExit() || result != 0) {
    return result;
  }
  return tora::test::fixture_skips() > 0 ? 77 : 0;
}
