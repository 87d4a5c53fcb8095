#pragma once

/// Umbrella header of the tora adapter library.

#include <tora/adapted_linear.hpp>
#include <tora/adapters/adapter.hpp>
#include <tora/adapters/factory.hpp>
#include <tora/adapters/full.hpp>
#include <tora/adapters/hydralora.hpp>
#include <tora/adapters/lora.hpp>
#include <tora/adapters/lora_hps.hpp>
#include <tora/adapters/lora_stl.hpp>
#include <tora/adapters/multilora.hpp>
#include <tora/adapters/terra.hpp>
#include <tora/adapters/tora.hpp>
#include <tora/attach.hpp>
#include <tora/concepts.hpp>
#include <tora/config.hpp>
#include <tora/detail/torch_version.hpp>
#include <tora/freeze.hpp>
#include <tora/hosvd.hpp>
#include <tora/io/adapter_io.hpp>
#include <tora/io/safetensors.hpp>
#include <tora/layers.hpp>
#include <tora/merge.hpp>
#include <tora/method.hpp>
#include <tora/regularizer.hpp>
#include <tora/routing.hpp>
#include <tora/routing_guard.hpp>
#include <tora/version.hpp>
