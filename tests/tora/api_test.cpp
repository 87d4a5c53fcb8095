#include <doctest/doctest.h>

#include <tora/tora.hpp>

#include <fstream>
#include <iterator>
#include <string>
#include <utility>

namespace {

/// A user linear module with torch::nn::Linear's surface.
struct PlainLinearImpl : torch::nn::Module {
  explicit PlainLinearImpl(int64_t in, int64_t out) : options(in, out) {
    weight = register_parameter("weight", torch::randn({out, in}));
    bias = register_parameter("bias", torch::zeros({out}));
  }
  torch::Tensor forward(const torch::Tensor& x) { return torch::linear(x, weight, bias); }
  torch::nn::LinearOptions options;
  torch::Tensor weight;
  torch::Tensor bias;
};

/// A module with a weight and a forward but no linear options.
struct NotLinearImpl : torch::nn::Module {
  torch::Tensor forward(const torch::Tensor& x) { return x; }
  torch::Tensor weight;
  torch::Tensor bias;
};

/// Something with an adapter's members that is not a module.
struct NotAModule {
  static constexpr tora::Method kind = tora::Method::lora;
  static constexpr bool is_mergeable = true;
  void add_update(torch::Tensor&, const torch::Tensor&, const tora::detail::TaskRows&) {}
  int64_t num_tasks() const { return 1; }
  tora::AdapterConfig config() const { return {}; }
};

template <class A>
constexpr bool can_take_task_delta = requires(const A& adapter) {
  tora::task_delta(adapter, 0);
};

}  // namespace

// Linear modules.
static_assert(tora::LinearModule<torch::nn::LinearImpl>);
static_assert(tora::LinearModule<tora::AdaptedLinearImpl>);
static_assert(tora::LinearModule<PlainLinearImpl>);
static_assert(!tora::LinearModule<torch::nn::Conv2dImpl>);
static_assert(!tora::LinearModule<NotLinearImpl>);
static_assert(!tora::LinearModule<torch::nn::Linear>);  // the holder, not the module
static_assert(!tora::LinearModule<int>);

// Adapters.
static_assert(tora::Adapter<tora::LoraImpl>);
static_assert(tora::Adapter<tora::LoraHpsImpl>);
static_assert(tora::Adapter<tora::LoraStlImpl>);
static_assert(tora::Adapter<tora::MultiLoraImpl>);
static_assert(tora::Adapter<tora::HydraLoraImpl>);
static_assert(tora::Adapter<tora::TerraImpl>);
static_assert(tora::Adapter<tora::ToraImpl>);
static_assert(tora::Adapter<tora::FullImpl>);
static_assert(!tora::Adapter<tora::AdapterBase>);
static_assert(!tora::Adapter<torch::nn::LinearImpl>);
static_assert(!tora::Adapter<NotAModule>);

// Merging: HydraLoRA is refused at compile time.
static_assert(tora::MergeableAdapter<tora::ToraImpl>);
static_assert(tora::MergeableAdapter<tora::LoraStlImpl>);
static_assert(tora::MergeableAdapter<tora::TerraImpl>);
static_assert(!tora::MergeableAdapter<tora::HydraLoraImpl>);
static_assert(can_take_task_delta<tora::ToraImpl>);
static_assert(can_take_task_delta<tora::MultiLoraImpl>);
static_assert(!can_take_task_delta<tora::HydraLoraImpl>);
static_assert(tora::LoraHpsImpl::kind == tora::Method::lora_hps);
static_assert(!tora::is_mergeable(tora::Method::hydralora) &&
              tora::is_mergeable(tora::Method::tora));

TEST_CASE("every method name reads back to its method") {
  for (auto method : tora::all_methods) {
    CHECK(tora::method_from_string(tora::to_string(method)) == method);
  }
  CHECK(tora::to_string(tora::Method::lora_hps) == "lora-hps");
  CHECK(tora::method_from_string("lora-stl") == tora::Method::lora_stl);
  try {
    (void)tora::method_from_string("dora");
    FAIL("expected an error");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("'dora'") != std::string::npos);
    CHECK(std::string(e.what()).find("hydralora") != std::string::npos);
  }
}

TEST_CASE("an adapter config survives JSON and rejects unknown keys and bad values") {
  tora::AdapterConfig config;
  config.method = tora::Method::terra;
  config.num_tasks = 4;
  config.rank = 16;
  config.alpha = 32;
  config.terra_coordinates = {0.1, 0.2, 0.3, 0.4};
  config.output_blocks = {true, false, true};
  nlohmann::json json = config;
  CHECK(json["method"] == "terra");
  CHECK(json.get<tora::AdapterConfig>() == config);

  auto defaults = nlohmann::json::object().get<tora::AdapterConfig>();
  CHECK(defaults == tora::AdapterConfig{});
  CHECK(defaults.method == tora::Method::tora);
  CHECK(defaults.scaling == 0.5);
  CHECK(defaults.dropout == 0.1);
  CHECK(defaults.p == 32);
  CHECK(defaults.v == 8);

  CHECK_THROWS_WITH_AS(nlohmann::json({{"rnak", 3}}).get<tora::AdapterConfig>(),
                       doctest::Contains("'rnak'"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(nlohmann::json({{"rank", "eight"}}).get<tora::AdapterConfig>(),
                       doctest::Contains("'rank'"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(nlohmann::json({{"rank", 0}}).get<tora::AdapterConfig>(),
                       doctest::Contains("rank must be >= 1"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      nlohmann::json({{"output_blocks", {false, false}}}).get<tora::AdapterConfig>(),
      doctest::Contains("at least one block"), std::invalid_argument);
}

TEST_CASE("routings describe themselves and refuse tasks the adapter does not have") {
  CHECK(tora::Routing().describe() == "single(0)");
  CHECK(tora::Routing::stacked().describe() == "stacked(all)");
  CHECK(tora::Routing::stacked({2, 0}).describe() == "stacked(2,0)");
  CHECK(tora::Routing::base().describe() == "base");
  auto ids = torch::tensor({0, 2, 1}, torch::kLong);
  CHECK(tora::Routing::per_row(ids).task() == 2);
  CHECK_THROWS(tora::Routing::single(-1));
  CHECK_THROWS(tora::Routing::per_row(torch::tensor({0.0, 1.0})));
  CHECK_THROWS(tora::Routing::per_row(torch::tensor({0, -1}, torch::kLong)));
  CHECK_THROWS_WITH(tora::Routing::single(3).check_tasks(3, "layer"),
                    doctest::Contains("task 3 but the adapter has 3 task(s)"));
  CHECK_NOTHROW(tora::Routing::stacked({2, 0}).check_tasks(3, "layer"));
}

TEST_CASE("name patterns match whole dotted names with * as any run") {
  CHECK(tora::matches_pattern("linear1", "linear1"));
  CHECK_FALSE(tora::matches_pattern("linear10", "linear1"));
  CHECK(tora::matches_pattern("blocks.3.attn.qkv", "blocks.*.attn.qkv"));
  CHECK(tora::matches_pattern("blocks.3.attn.qkv", "*qkv"));
  CHECK(tora::matches_pattern("encoder.norm1.weight", "*norm*"));
  CHECK_FALSE(tora::matches_pattern("blocks.3.attn.proj", "blocks.*.attn.qkv"));
  CHECK(tora::matches_pattern("", "*"));
  CHECK_FALSE(tora::matches_pattern("a", ""));
}

TEST_CASE("an adapted linear built from torch::nn::Linear shares its weight and keeps its keys") {
  torch::nn::Linear linear(4, 6);
  tora::AdaptedLinear adapted(linear);
  CHECK(adapted->weight.is_same(linear->weight));
  auto names = adapted->named_parameters().keys();
  CHECK((names == std::vector<std::string>{"weight", "bias"}));
  auto x = torch::randn({2, 4});
  CHECK(torch::equal(adapted(x), linear(x)));

  tora::AdaptedLinear no_bias(torch::nn::LinearOptions(4, 6).bias(false));
  CHECK_FALSE(no_bias->bias.defined());
  CHECK(no_bias->named_parameters().size() == 1);
  CHECK_THROWS_WITH(adapted(torch::randn({2, 5})), doctest::Contains("expects input [..., 4]"));
}

TEST_CASE("the docs show their snippets exactly as they are compiled") {
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "cannot open " << path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  const std::string root = TORA_SOURCE_DIR;
  for (const auto& [page, source] : {std::pair{"docs/tora.md", "tora_quickstart.cpp"},
                                     std::pair{"docs/mtsam.md", "mtsam_from_checkpoint.cpp"}}) {
    const auto docs = read(root + "/" + page);
    const auto snippet = read(root + "/examples/snippets/" + source);
    CHECK(snippet.find("int main()") != std::string::npos);
    CHECK_MESSAGE(docs.find(snippet) != std::string::npos,
                  page << " must hold examples/snippets/" << source << " verbatim");
  }
}
