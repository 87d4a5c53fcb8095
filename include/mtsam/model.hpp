#pragma once

/// MTSAM: SAM's image encoder shared by every task, adapters on the encoder attention's `qkv`
/// (ToRA by default, any tora method allowed), and per task a set of task embeddings and a
/// mask decoder. No prompt encoder: each output channel of a task is one decoder copy whose
/// image embedding has that channel's task embedding added.

#include <mtsam/image_encoder.hpp>
#include <mtsam/mask_decoder.hpp>
#include <mtsam/positional_encoding.hpp>
#include <mtsam/presets.hpp>
#include <mtsam/task.hpp>

#include <tora/adapted_linear.hpp>
#include <tora/config.hpp>
#include <tora/routing.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mtsam {

/// The paper's adapter: ToRA with p = q = 32, v = 8, s = 0.5, dropout 0.1, on q and v of `qkv`.
inline tora::AdapterConfig default_adapter_config() {
  tora::AdapterConfig config;
  config.method = tora::Method::tora;
  config.p = 32;
  config.q = 32;
  config.v = 8;
  config.scaling = 0.5;
  config.dropout = 0.1;
  config.output_blocks = {true, false, true};
  return config;
}

/// Options of MTSAM.
struct MTSAMOptions {
  MTSAMOptions(SamShape shape, std::vector<Task> tasks)
      : shape_(std::move(shape)), tasks_(std::move(tasks)) {}
  /// SAM's sizes (preset_shape(Preset::vit_b, 512) for the paper's NYUv2 runs).
  TORCH_ARG(SamShape, shape);
  /// The tasks, in output order.
  TORCH_ARG(std::vector<Task>, tasks);
  /// The adapter on every adapted `qkv`; its num_tasks is set to the number of tasks.
  /// `output_blocks` selects q, k, v.
  TORCH_ARG(tora::AdapterConfig, adapter) = default_adapter_config();
  /// Encoder blocks whose `qkv` is adapted; empty: all.
  TORCH_ARG(std::vector<int64_t>, adapted_blocks) = {};
  /// forward() runs the encoder once on a task-major stacked batch `[T*B]` (true) or once per
  /// task (false); both give the same outputs.
  TORCH_ARG(bool, stack_tasks) = true;
  /// Project the windows' zero padding as SAM's code does (see ImageEncoderOptions).
  TORCH_ARG(bool, project_padding) = false;
};

/// The multi-task model. Parameters: `image_encoder.*` (official names, plus
/// `blocks.N.attn.qkv.adapter.*`), `pe_layer.positional_encoding_gaussian_matrix`,
/// `task_embeddings.T` `[N_t, C]`, `decoders.T.*` (official mask decoder names).
class MTSAMImpl : public torch::nn::Module {
 public:
  explicit MTSAMImpl(MTSAMOptions options_) : options(std::move(options_)) { MTSAMImpl::reset(); }

  /// Builds the encoder, the image PE, the task embeddings and decoders (random values), and
  /// the adapters, then sets the reference's trainable set.
  void reset() {
    validate_tasks(options.tasks());
    auto sam = sam_options(options.shape());
    sam.encoder().project_padding(options.project_padding());
    image_encoder = register_module("image_encoder", ImageEncoder(sam.encoder()));
    pe_layer = register_module("pe_layer", PositionEmbeddingRandom(sam.decoder().dim() / 2));
    task_embeddings = register_module("task_embeddings", torch::nn::ParameterList());
    decoders = register_module("decoders", torch::nn::ModuleList());
    for (const auto& task : options.tasks()) {
      task_embeddings->append(torch::randn({task.channels, sam.decoder().dim()}));
      decoders->push_back(MaskDecoder(sam.decoder()));
    }

    auto config = options.adapter();
    config.num_tasks = num_tasks();
    tora::validate(config);
    adapted_.clear();
    std::vector<int64_t> blocks = options.adapted_blocks();
    if (blocks.empty()) {
      for (int64_t i = 0; i < sam.encoder().depth(); ++i) {
        blocks.push_back(i);
      }
    }
    for (size_t i = 0; i < blocks.size(); ++i) {
      const int64_t index = blocks[i];
      TORCH_CHECK(std::find(blocks.begin(), blocks.begin() + static_cast<long>(i), index) ==
                      blocks.begin() + static_cast<long>(i),
                  "adapted_blocks names block ", index, " twice");
      auto qkv = image_encoder->qkv(index);
      qkv->set_adapter(config);
      adapted_.push_back(qkv);
    }
    set_reference_trainable();
  }

  /// Number of tasks T.
  int64_t num_tasks() const { return static_cast<int64_t>(options.tasks().size()); }

  /// The index of the task called `name`.
  int64_t task_index(std::string_view name) const {
    for (int64_t t = 0; t < num_tasks(); ++t) {
      if (options.tasks()[t].name == name) {
        return t;
      }
    }
    throw std::invalid_argument("MTSAM has no task called '" + std::string(name) + "'");
  }

  /// The adapted `qkv` layers, in block order.
  const std::vector<tora::AdaptedLinear>& adapted_layers() const { return adapted_; }

  /// Routes every adapted layer.
  void set_routing(const tora::Routing& routing) {
    for (auto& layer : adapted_) {
      layer->set_routing(routing);
    }
  }

  /// Task `task`'s image embeddings: `[B, 3, S, S]` -> `[B, C, S/16, S/16]`.
  torch::Tensor encode(const torch::Tensor& images, int64_t task) {
    check_task(task);
    set_routing(tora::Routing::single(task));
    return image_encoder->forward(images);
  }

  /// Image b's embeddings for task `task_ids[b]` (`[B]` int64): `[B, C, S/16, S/16]`.
  torch::Tensor encode_per_image(const torch::Tensor& images, const torch::Tensor& task_ids) {
    set_routing(tora::Routing::per_row(task_ids));
    return image_encoder->forward(images);
  }

  /// Every task's image embeddings `[T, B, C, S/16, S/16]`, from one encoder pass over the
  /// task-major stacked batch (or one pass per task when `stack_tasks` is off).
  torch::Tensor encode_all(const torch::Tensor& images) {
    const int64_t t = num_tasks();
    if (!options.stack_tasks() || t == 1) {
      std::vector<torch::Tensor> outputs;
      for (int64_t task = 0; task < t; ++task) {
        outputs.push_back(encode(images, task));
      }
      return torch::stack(outputs, 0);
    }
    // The patch and position embedding do not depend on the task: computed once.
    const auto tokens = image_encoder->embed(images);  // [B, h, w, D]
    const int64_t b = tokens.size(0);
    auto stacked = tokens.unsqueeze(0)
                       .expand({t, -1, -1, -1, -1})
                       .reshape({t * b, tokens.size(1), tokens.size(2), tokens.size(3)});
    set_routing(tora::Routing::stacked());
    const auto out = image_encoder->forward_tokens(stacked);  // [T*B, C, h, w]
    return out.view({t, b, out.size(1), out.size(2), out.size(3)});
  }

  /// The positional encoding of the embedding grid, `[1, C, h, w]`.
  torch::Tensor dense_pe() const {
    const int64_t grid = options.shape().img_size / options.shape().patch_size;
    return pe_layer->forward(grid, grid).unsqueeze(0);
  }

  /// Task `task`'s low-resolution output from its embeddings `[B, C, h, w]`:
  /// `[B, N_t, 4h, 4w]`. Channel c of image b comes from the decoder run on
  /// `embeddings[b] + task_embeddings[task][c]`.
  torch::Tensor decode(int64_t task, const torch::Tensor& embeddings) {
    check_task(task);
    const auto& weights = task_embeddings[task];  // [N, C]
    TORCH_CHECK(embeddings.dim() == 4 && embeddings.size(1) == weights.size(1),
                "task embeddings are added to image embeddings [B, ", weights.size(1),
                ", h, w], got ", embeddings.sizes());
    const int64_t b = embeddings.size(0);
    const int64_t n = weights.size(0);
    const int64_t c = weights.size(1);
    // Image-major copies: row b * N + k is image b with channel k's embedding.
    const auto src = (embeddings.unsqueeze(1) + weights.view({1, n, c, 1, 1}))
                         .reshape({b * n, c, embeddings.size(2), embeddings.size(3)});
    const auto sparse = torch::zeros({b * n, 0, c}, embeddings.options());
    auto decoder = decoders[task]->as<MaskDecoder>();
    const auto masks = decoder->predict_masks(src, dense_pe(), sparse, 1).masks;
    return masks.view({b, n, masks.size(2), masks.size(3)});
  }

  /// Every task's low-resolution output: element t is `[B, N_t, S/4, S/4]`.
  std::vector<torch::Tensor> forward(const torch::Tensor& images) {
    const auto embeddings = encode_all(images);
    std::vector<torch::Tensor> outputs;
    for (int64_t task = 0; task < num_tasks(); ++task) {
      outputs.push_back(decode(task, embeddings[task]));
    }
    return outputs;
  }

  /// One task's low-resolution output `[B, N_t, S/4, S/4]` (works with a merged task).
  torch::Tensor forward_task(const torch::Tensor& images, int64_t task) {
    return decode(task, encode(images, task));
  }

  /// Folds task `task`'s adapter update into every adapted weight (inference only); only
  /// encode(·, task) and forward_task(·, task) may run until unmerge().
  void merge(int64_t task) {
    check_task(task);
    unmerge();
    for (auto& layer : adapted_) {
      layer->merge(task);
    }
  }

  /// Restores the base weights after merge().
  void unmerge() {
    for (auto& layer : adapted_) {
      layer->unmerge();
    }
  }

  /// The reference's trainable set: the adapters, every parameter whose name contains "norm"
  /// (the encoder blocks' LayerNorms; the neck's LayerNorm2d are `neck.1`/`neck.3` and stay
  /// frozen, as in the reference), the task embeddings and the whole of each task decoder.
  /// With full fine-tuning every parameter trains.
  void set_reference_trainable() {
    const bool full = options.adapter().method == tora::Method::full;
    for (auto& item : named_parameters(true)) {
      const auto& name = item.key();
      const bool trainable = full || name.find("norm") != std::string::npos ||
                             name.find(".adapter.") != std::string::npos ||
                             name.starts_with("task_embeddings.") || name.starts_with("decoders.");
      item.value().requires_grad_(trainable);
    }
  }

  MTSAMOptions options;
  ImageEncoder image_encoder{nullptr};
  PositionEmbeddingRandom pe_layer{nullptr};
  torch::nn::ParameterList task_embeddings{nullptr};
  torch::nn::ModuleList decoders{nullptr};

 private:
  void check_task(int64_t task) const {
    TORCH_CHECK(task >= 0 && task < num_tasks(), "task ", task, " is out of range: MTSAM has ",
                num_tasks(), " task(s)");
  }

  std::vector<tora::AdaptedLinear> adapted_;
};
TORCH_MODULE(MTSAM);

}  // namespace mtsam
