#pragma once

/// Umbrella header of the training layer: trainer options and schedule, the trainer with its
/// checkpoints, log and report, evaluation, and MTSAM experiments built from a configuration.
/// Link `mtsam::data`.

#include <mtsam/train/checkpoint.hpp>
#include <mtsam/train/config.hpp>
#include <mtsam/train/deploy.hpp>
#include <mtsam/train/evaluate.hpp>
#include <mtsam/train/experiment.hpp>
#include <mtsam/train/log.hpp>
#include <mtsam/train/options.hpp>
#include <mtsam/train/pictures.hpp>
#include <mtsam/train/records.hpp>
#include <mtsam/train/report.hpp>
#include <mtsam/train/schedule.hpp>
#include <mtsam/train/svg.hpp>
#include <mtsam/train/table.hpp>
#include <mtsam/train/task.hpp>
#include <mtsam/train/trainer.hpp>
