#pragma once

/// The concepts tora's templates are constrained by.

#include <tora/config.hpp>
#include <tora/method.hpp>
#include <tora/routing.hpp>

#include <torch/torch.h>

#include <concepts>
#include <cstdint>

namespace tora {

/// A LibTorch linear module (the `Impl`, not the holder): a torch::nn::Module with a `weight`
/// [out, in] and a `bias` tensor member, `options.in_features()` / `options.out_features()`,
/// and `forward(x)` returning a tensor. Satisfied by torch::nn::LinearImpl,
/// tora::AdaptedLinearImpl and user modules with the same surface; attach() adapts such a
/// module by rebinding its `weight` member, so its forward must read that member.
template <class M>
concept LinearModule = std::derived_from<M, torch::nn::Module> &&
    requires(M& module, const torch::Tensor& x) {
  { module.forward(x) } -> std::convertible_to<torch::Tensor>;
  { module.weight } -> std::same_as<torch::Tensor&>;
  { module.bias } -> std::same_as<torch::Tensor&>;
  { module.options.in_features() } -> std::convertible_to<int64_t>;
  { module.options.out_features() } -> std::convertible_to<int64_t>;
};

/// An adapter module: names its method (`A::kind`) and whether its update can be folded into
/// a weight (`A::is_mergeable`), reports its task count and config, and adds its update to a
/// base output in place. Satisfied by LoraImpl, LoraHpsImpl, LoraStlImpl, MultiLoraImpl,
/// HydraLoraImpl, TerraImpl, ToraImpl and FullImpl.
template <class A>
concept Adapter = std::derived_from<A, torch::nn::Module> &&
    requires(A& adapter, const A& const_adapter, torch::Tensor& y, const torch::Tensor& x,
             const detail::TaskRows& rows) {
  { A::kind } -> std::convertible_to<Method>;
  { A::is_mergeable } -> std::convertible_to<bool>;
  adapter.add_update(y, x, rows);
  { const_adapter.num_tasks() } -> std::convertible_to<int64_t>;
  { const_adapter.config() } -> std::same_as<AdapterConfig>;
};

/// An adapter whose per-task update is a fixed matrix that can be folded into the weight:
/// every Adapter but HydraLoraImpl, whose router mixes its heads per token.
template <class A>
concept MergeableAdapter = Adapter<A> && A::is_mergeable && requires(const A& adapter, int64_t t) {
  { adapter.delta_weight(t) } -> std::same_as<torch::Tensor>;
};

}  // namespace tora
