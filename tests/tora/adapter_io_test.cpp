#include <doctest/doctest.h>

#include <tora/tora.hpp>

#include "tiny_adapters.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace fs = std::filesystem;
using tora::test::max_diff;

fs::path scratch_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("tora_adapter_io_test_" + name);
  fs::remove_all(dir);
  return dir;
}

/// Two AdaptedLinear layers and an unmodified linear, as a model written partly with tora.
struct NetImpl : torch::nn::Module {
  explicit NetImpl(int64_t width = 6) {
    first = register_module("first", tora::AdaptedLinear(width, 3 * width));
    second = register_module("second", tora::AdaptedLinear(3 * width, width));
    head = register_module("head", torch::nn::Linear(width, 4));
  }
  torch::Tensor forward(const torch::Tensor& x) { return head(second(torch::relu(first(x)))); }
  tora::AdaptedLinear first{nullptr};
  tora::AdaptedLinear second{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Net);

/// A model with the same base weights as `source`, and no adapters.
Net copy_base(const Net& source, int64_t width = 6) {
  Net copy(width);
  torch::NoGradGuard no_grad;
  for (const auto& item : source->named_parameters()) {
    if (auto* target = copy->named_parameters().find(item.key())) {
      target->copy_(item.value());
    }
  }
  return copy;
}

Net adapted_net() {
  torch::manual_seed(41);
  Net net;
  auto tora_config = tora::test::tiny_config(tora::Method::tora);
  tora_config.output_blocks = {true, false, true};
  tora::attach(*net, {"first"}, tora_config);
  tora::attach(*net, {"second", "head"}, tora::test::tiny_config(tora::Method::terra));
  for (auto& layer : tora::adapted_layers(*net)) {
    tora::test::randomize(layer.adapter());
  }
  net->eval();
  return net;
}

torch::Tensor run(Net& net, const torch::Tensor& x, int64_t task) {
  tora::RoutingGuard guard(*net, tora::Routing::single(task));
  return net->forward(x);
}

}  // namespace

TEST_CASE("saved adapters load back into a fresh, unmodified model and give the same outputs") {
  auto net = adapted_net();
  auto dir = scratch_dir("roundtrip");
  tora::save_adapters(*net, dir, {{"task_names", {"seg", "depth", "normal"}}});
  REQUIRE(fs::exists(dir / tora::adapter_tensors_file));
  REQUIRE(fs::exists(dir / tora::adapter_config_file));

  // The JSON config is plain and complete.
  nlohmann::json config;
  std::ifstream(dir / tora::adapter_config_file) >> config;
  CHECK(config["format"] == "tora-adapters");
  CHECK(config["method"] == "mixed");
  CHECK(config["num_tasks"] == 3);
  CHECK(config["targets"] == nlohmann::json({"first", "second", "head"}));
  CHECK(config["layers"][0]["config"]["method"] == "tora");
  CHECK(config["layers"][0]["config"]["output_blocks"] == nlohmann::json({true, false, true}));
  CHECK(config["layers"][2]["weight_rebinding"] == true);
  auto file = tora::io::read_safetensors(dir / tora::adapter_tensors_file);
  CHECK(file.metadata.count("tora_config") == 1);
  CHECK(file.find("first.adapter.G") != nullptr);
  CHECK(file.find("head.adapter.Omega") != nullptr);
  CHECK(file.find("first.weight") == nullptr);  // the frozen model is not saved

  auto fresh = copy_base(net);
  fresh->eval();
  auto extra = tora::load_adapters(*fresh, dir);
  CHECK(extra["task_names"][1] == "depth");
  auto x = torch::randn({5, 6});
  for (int64_t t = 0; t < 3; ++t) {
    CHECK(max_diff(run(fresh, x, t), run(net, x, t)) == 0.0);
  }

  // Loading again into the now adapted model overwrites the values in place.
  tora::test::randomize(*fresh->first->adapter());
  tora::load_adapters(*fresh, dir);
  CHECK(max_diff(run(fresh, x, 1), run(net, x, 1)) == 0.0);
}

TEST_CASE("Python reads the adapter files with safetensors and json alone") {
#ifndef TORA_TEST_PYTHON
  MESSAGE("skipped: no Python with safetensors and numpy was found at configure time");
#else
  auto net = adapted_net();
  auto dir = scratch_dir("python");
  tora::save_adapters(*net, dir);
  const auto listing = dir.parent_path() / "tora_adapter_io_python.txt";
  const std::string command = std::string("'") + TORA_TEST_PYTHON + "' '" + TORA_SOURCE_DIR +
                              "/tests/tora/read_adapters.py' '" + dir.string() + "' > '" +
                              listing.string() + "'";
  REQUIRE(std::system(command.c_str()) == 0);

  std::ifstream in(listing);
  std::map<std::string, std::pair<std::string, double>> seen;
  std::vector<std::string> layers;
  for (std::string kind; in >> kind;) {
    std::string name, value;
    in >> name >> value;
    if (kind == "tensor") {
      double sum = 0.0;
      in >> sum;
      seen[name] = {value, sum};
    } else {
      layers.push_back(name + " " + value);
    }
  }
  CHECK((layers == std::vector<std::string>{"first tora", "second terra", "head terra"}));
  const auto file = tora::io::read_safetensors(dir / tora::adapter_tensors_file);
  CHECK(seen.size() == file.tensors.size());
  for (const auto& [name, tensor] : file.tensors) {
    CAPTURE(name);
    REQUIRE(seen.count(name) == 1);
    std::string shape;
    for (const auto d : tensor.sizes()) {
      if (!shape.empty()) {
        shape += 'x';
      }
      shape += std::to_string(d);
    }
    CHECK(seen[name].first == shape);
    CHECK(seen[name].second ==
          doctest::Approx(tensor.to(torch::kDouble).sum().item<double>()).epsilon(1e-6));
  }
#endif
}

TEST_CASE("full fine-tuning saves the trained base weights of its layers only") {
  torch::manual_seed(42);
  Net net;
  tora::attach(*net, {"second"}, tora::test::tiny_config(tora::Method::full));
  auto dir = scratch_dir("full");
  tora::save_adapters(*net, dir);
  auto file = tora::io::read_safetensors(dir / tora::adapter_tensors_file);
  REQUIRE(file.tensors.size() == 2);
  CHECK(file.tensors[0].first == "second.weight");
  CHECK(file.tensors[1].first == "second.bias");
  Net other;
  tora::load_adapters(*other, dir);
  CHECK(torch::equal(other->second->weight, net->second->weight));
  CHECK_FALSE(torch::equal(other->first->weight, net->first->weight));
}

TEST_CASE("loading into a model of other shapes names the key and both shapes") {
  auto net = adapted_net();
  auto dir = scratch_dir("shapes");
  tora::save_adapters(*net, dir);
  Net wider(8);
  try {
    tora::load_adapters(*wider, dir);
    FAIL("expected an error");
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    CHECK_MESSAGE(message.find("'first.adapter.U1'") != std::string::npos, message);
    CHECK_MESSAGE(message.find("[12, 4] in the file but [16, 4] in the model") != std::string::npos,
                  message);
  }
  // Nothing was attached by the failed load.
  CHECK(tora::adapted_layers(*wider).empty());

  // A layer holding another method is refused as well.
  Net other;
  tora::attach(*other, {"first"}, tora::test::tiny_config(tora::Method::lora_stl));
  CHECK_THROWS_WITH(tora::load_adapters(*other, dir),
                    doctest::Contains("holds a lora-stl adapter but the file a tora one"));
}

TEST_CASE("loading refuses adapters of the same shapes but other settings, and missing layers") {
  auto net = adapted_net();
  auto dir = scratch_dir("settings");
  tora::save_adapters(*net, dir);

  // Other q/k/v blocks give the same tensor shapes but other outputs.
  auto blocks = copy_base(net);
  auto tora_config = tora::test::tiny_config(tora::Method::tora);
  tora_config.output_blocks = {true, true, false};
  tora::attach(*blocks, {"first"}, tora_config);
  CHECK_THROWS_WITH(tora::load_adapters(*blocks, dir),
                    doctest::Contains("layer 'first' has output_blocks = [true,true,false] in the "
                                      "model but [true,false,true] in the file"));

  auto scaled = copy_base(net);
  tora_config.output_blocks = {true, false, true};
  tora_config.scaling = 2.0;
  tora::attach(*scaled, {"first"}, tora_config);
  CHECK_THROWS_WITH(tora::load_adapters(*scaled, dir), doctest::Contains("has scaling = 2.0"));

  // Dropout acts in training only: a model built with another rate loads the file.
  auto inference = copy_base(net);
  tora_config.scaling = tora::test::tiny_config(tora::Method::tora).scaling;
  tora_config.dropout = 0.3;
  tora::attach(*inference, {"first"}, tora_config);
  CHECK_NOTHROW(tora::load_adapters(*inference, dir));

  // A model layer with an adapter that the file does not cover is not left as it was.
  auto more = copy_base(net);
  tora::attach(*more, {"first"}, tora_config);
  auto only_first = copy_base(net);
  tora::attach(*only_first, {"first"}, tora_config);
  auto first_dir = scratch_dir("first_only");
  tora::save_adapters(*only_first, first_dir);
  tora::attach(*more, {"second"}, tora::test::tiny_config(tora::Method::terra));
  CHECK_THROWS_WITH(tora::load_adapters(*more, first_dir),
                    doctest::Contains("layer 'second' of the model holds a terra adapter but "
                                      "the file has none for it"));
}

TEST_CASE("adapters of a user linear type load when the type is named, as for attach") {
  torch::manual_seed(43);
  tora::test::MyLinear user(6, 9);
  torch::nn::Sequential model(user);
  tora::attach<tora::test::MyLinearImpl>(*model, {"0"},
                                         tora::test::tiny_config(tora::Method::tora));
  tora::test::randomize(tora::adapted_layers(*model).at(0).adapter());
  auto dir = scratch_dir("user_linear");
  tora::save_adapters(*model, dir);

  tora::test::MyLinear fresh_user(6, 9);
  {
    torch::NoGradGuard no_grad;
    fresh_user->weight.copy_(user->named_parameters()["weight"]);
  }
  torch::nn::Sequential fresh(fresh_user);
  CHECK_THROWS_WITH(tora::load_adapters(*fresh, dir),
                    doctest::Contains("'0', which is not a linear layer of the model"));
  tora::load_adapters<tora::test::MyLinearImpl>(*fresh, dir);
  const auto x = torch::randn({4, 6});
  for (int64_t t = 0; t < tora::test::tiny_tasks; ++t) {
    tora::RoutingGuard a(*model, tora::Routing::single(t));
    tora::RoutingGuard b(*fresh, tora::Routing::single(t));
    CHECK(max_diff(model->forward(x), fresh->forward(x)) < 1e-6);
  }
}

TEST_CASE("an adapter that an unmodified linear cannot hold is refused before anything changes") {
  auto net = adapted_net();
  auto dir = scratch_dir("hydra_on_plain");
  tora::save_adapters(*net, dir);
  // The file now says HydraLoRA for the plain `head` layer.
  nlohmann::json config;
  {
    std::ifstream in(dir / tora::adapter_config_file);
    in >> config;
  }
  for (auto& layer : config["layers"]) {
    if (layer["target"] == "head") {
      layer["config"]["method"] = "hydralora";
    }
  }
  std::ofstream(dir / tora::adapter_config_file) << config.dump();
  auto fresh = copy_base(net);
  CHECK_THROWS_WITH(tora::load_adapters(*fresh, dir),
                    doctest::Contains("hydralora adapter for 'head', an unmodified linear"));
  CHECK(tora::adapted_layers(*fresh).empty());
}

TEST_CASE("cut or garbled adapter files give errors, never a crash") {
  auto net = adapted_net();
  auto dir = scratch_dir("broken");
  tora::save_adapters(*net, dir);
  const auto tensors_path = dir / tora::adapter_tensors_file;
  const auto config_path = dir / tora::adapter_config_file;
  std::string tensors_bytes;
  {
    std::ifstream in(tensors_path, std::ios::binary);
    tensors_bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::string config_text;
  {
    std::ifstream in(config_path);
    config_text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto write = [](const fs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };

  for (size_t keep :
       {size_t{0}, size_t{5}, size_t{100}, tensors_bytes.size() / 2, tensors_bytes.size() - 1}) {
    CAPTURE(keep);
    write(tensors_path, tensors_bytes.substr(0, keep));
    Net fresh = copy_base(net);
    CHECK_THROWS_AS(tora::load_adapters(*fresh, dir), std::runtime_error);
    CHECK(tora::adapted_layers(*fresh).empty());
  }
  // Garbled bytes inside the header.
  auto garbled = tensors_bytes;
  for (size_t i = 20; i < 60; i += 3) {
    garbled[i] = '#';
  }
  write(tensors_path, garbled);
  CHECK_THROWS_AS(tora::load_adapters(*copy_base(net), dir), std::runtime_error);
  write(tensors_path, tensors_bytes);

  write(config_path, config_text.substr(0, config_text.size() / 2));
  CHECK_THROWS_WITH_AS(tora::load_adapters(*copy_base(net), dir),
                       doctest::Contains("not valid JSON"), std::runtime_error);
  write(config_path, "{\"format\": \"something-else\"}");
  CHECK_THROWS_WITH_AS(tora::load_adapters(*copy_base(net), dir),
                       doctest::Contains("tora-adapters"), std::runtime_error);
  write(config_path, config_text);
  CHECK_NOTHROW(tora::load_adapters(*copy_base(net), dir));
  CHECK_THROWS_WITH_AS(tora::load_adapters(*copy_base(net), scratch_dir("absent")),
                       doctest::Contains("cannot open"), std::runtime_error);
}
