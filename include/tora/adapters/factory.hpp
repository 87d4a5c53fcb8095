#pragma once

/// Building the adapter a config describes.

#include <tora/adapters/adapter.hpp>
#include <tora/adapters/full.hpp>
#include <tora/adapters/hydralora.hpp>
#include <tora/adapters/lora.hpp>
#include <tora/adapters/lora_hps.hpp>
#include <tora/adapters/lora_stl.hpp>
#include <tora/adapters/multilora.hpp>
#include <tora/adapters/terra.hpp>
#include <tora/adapters/tora.hpp>
#include <tora/config.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <memory>

namespace tora {

/// A new adapter of `config.method` for a layer [out_features, in_features], initialised as
/// the method prescribes, on the CPU in float32 (move it with `->to(...)`).
inline std::shared_ptr<AdapterBase> make_adapter(const AdapterConfig& config, int64_t in_features,
                                                 int64_t out_features) {
  validate(config);
  const int64_t in = in_features;
  const int64_t out = out_features;
  const int64_t tasks = config.num_tasks;
  switch (config.method) {
    case Method::lora:
    case Method::lora_hps: {
      auto options = LoraOptions(in, out)
                         .num_tasks(tasks)
                         .rank(config.rank)
                         .alpha(config.alpha)
                         .dropout(config.dropout)
                         .output_blocks(config.output_blocks);
      if (config.method == Method::lora) {
        return std::make_shared<LoraImpl>(options);
      }
      return std::make_shared<LoraHpsImpl>(options);
    }
    case Method::lora_stl:
      return std::make_shared<LoraStlImpl>(LoraStlOptions(in, out, tasks)
                                               .rank(config.rank)
                                               .alpha(config.alpha)
                                               .dropout(config.dropout)
                                               .output_blocks(config.output_blocks));
    case Method::multilora:
      return std::make_shared<MultiLoraImpl>(MultiLoraOptions(in, out)
                                                 .num_tasks(tasks)
                                                 .num_loras(config.num_loras)
                                                 .rank(config.rank)
                                                 .alpha(config.alpha)
                                                 .dropout(config.dropout)
                                                 .output_blocks(config.output_blocks));
    case Method::hydralora:
      return std::make_shared<HydraLoraImpl>(HydraLoraOptions(in, out)
                                                 .num_tasks(tasks)
                                                 .num_heads(config.num_heads)
                                                 .rank(config.rank)
                                                 .alpha(config.alpha)
                                                 .dropout(config.dropout)
                                                 .output_blocks(config.output_blocks));
    case Method::terra:
      return std::make_shared<TerraImpl>(TerraOptions(in, out, tasks)
                                             .rank(config.rank)
                                             .alpha(config.alpha)
                                             .dropout(config.dropout)
                                             .coordinates(config.terra_coordinates)
                                             .shared_omega(config.terra_shared_omega)
                                             .output_blocks(config.output_blocks));
    case Method::tora:
      return std::make_shared<ToraImpl>(ToraOptions(in, out, tasks)
                                            .p(config.p)
                                            .q(config.q)
                                            .v(config.v)
                                            .scaling(config.scaling)
                                            .dropout(config.dropout)
                                            .output_blocks(config.output_blocks));
    case Method::full:
      return std::make_shared<FullImpl>(FullOptions(in, out).num_tasks(tasks));
  }
  TORCH_CHECK(false, "make_adapter: unknown method");
}

/// The number of parameters an adapter of `config` has on a layer [out, in], by the method's
/// formula (ToRA: pqv + out p + in q + T v; LoRA-STL: T r (out + in); full: out in + out when
/// `with_bias`). `out` counts the adapted output rows only.
inline int64_t adapter_parameter_count(const AdapterConfig& config, int64_t in, int64_t out,
                                       bool with_bias = true) {
  const int64_t r = config.rank;
  const int64_t tasks = config.num_tasks;
  switch (config.method) {
    case Method::lora:
    case Method::lora_hps:
      return r * (out + in);
    case Method::lora_stl:
      return tasks * r * (out + in);
    case Method::multilora:
      return config.num_loras * (r * (out + in) + out);
    case Method::hydralora:
      return r * in + config.num_heads * (out * r + in);
    case Method::terra:
      return r * (out + in) + (config.terra_shared_omega ? 1 : tasks) * r * r;
    case Method::tora:
      return config.p * config.q * config.v + out * config.p + in * config.q + tasks * config.v;
    case Method::full:
      return out * in + (with_bias ? out : 0);
  }
  return 0;
}

}  // namespace tora
