#include <iostream>

#include <mtsam/mtsam.hpp>
#include <tora/tora.hpp>

int main() {
  torch::nn::Linear base(8, 4);
  const auto out = base->forward(torch::ones({2, 8}));
  if (out.sizes() != torch::IntArrayRef({2, 4})) {
    std::cerr << "consumer: expected a [2, 4] output, got " << out.sizes() << '\n';
    return 1;
  }
  std::cout << "consumer: tora " << tora::version_major << '.' << tora::version_minor << " works\n";
  return 0;
}
