#pragma once

/// LoRA-HPS: one LoRA shared by every task (hard parameter sharing of the update).

#include <tora/adapters/lora.hpp>

namespace tora {

/// LoRA-HPS: a LoraImpl whose num_tasks tasks all use the same A and B. Same options, init,
/// scaling and dropout as LoRA; only the method it reports (and saves) differs.
class LoraHpsImpl : public LoraImpl {
 public:
  static constexpr Method kind = Method::lora_hps;

  explicit LoraHpsImpl(LoraOptions options_) : LoraImpl(std::move(options_)) {}

  Method method() const override { return kind; }
};

TORCH_MODULE(LoraHps);

}  // namespace tora
