#pragma once

// Progress output of the command: a bar redrawn in place on a terminal (step, loss per task,
// it/s, ETA), plain lines otherwise. Everything goes to stderr; results go to stdout.

#include <mtsam/train/records.hpp>

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

namespace mtsam::cli {

inline std::string clock_text(double seconds) {
  if (!(seconds >= 0.0) || seconds > 1e7) {
    return "--:--";
  }
  const auto s = static_cast<int64_t>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{}:{:02}", s / 60, s % 60);
}

class Progress {
 public:
  Progress() : terminal_(::isatty(STDERR_FILENO) == 1) {}

  /// Whether the bar is redrawn in place.
  bool terminal() const { return terminal_; }

  void step(const train::StepRecord& s) {
    // The rate counts from the first step this process saw, so that the evaluation before
    // training (or the time before a resumed run's first step) does not slow it down.
    if (first_step_ < 0) {
      first_step_ = s.step;
      first_seconds_ = s.seconds;
    }
    const bool first = s.step == first_step_;
    const double elapsed = first ? s.seconds : s.seconds - first_seconds_;
    const double steps = first ? 1.0 : static_cast<double>(s.step - first_step_);
    const double rate = elapsed > 0.0 ? steps / elapsed : 0.0;
    const double eta = rate > 0.0 ? static_cast<double>(s.total_steps - s.step) / rate : -1.0;
    std::string losses;
    for (const auto& [task, loss] : s.task_losses) {
      losses += fmt::format(" {} {:.4g}", task, loss);
    }
    if (terminal_) {
      const int width = 24;
      const auto filled = static_cast<int>(width * s.step / std::max<int64_t>(1, s.total_steps));
      std::string line = fmt::format(
          "step {}/{} [{}{}] {:3d}% | loss {:.4g} |{} | reg {:.3g} | {:.2f} it/s | "
          "ETA {}",
          s.step, s.total_steps, std::string(static_cast<size_t>(filled), '#'),
          std::string(static_cast<size_t>(width - filled), '.'),
          static_cast<int>(100 * s.step / std::max<int64_t>(1, s.total_steps)), s.task_loss, losses,
          s.regularizer, rate, clock_text(eta));
      draw(line);
      return;
    }
    const int64_t every = std::max<int64_t>(1, s.total_steps / 20);
    if (s.step % every == 0 || s.step == s.total_steps || first) {
      std::fprintf(
          stderr, "%s\n",
          fmt::format("step {}/{} epoch {} loss {:.4g}{} reg {:.3g} lr {:.3g} {:.2f} it/s ETA {}",
                      s.step, s.total_steps, s.epoch + 1, s.task_loss, losses, s.regularizer, s.lr,
                      rate, clock_text(eta))
              .c_str());
    }
  }

  void evaluating(int64_t done, int64_t total) {
    if (terminal_) {
      draw(fmt::format("evaluating {}/{}", done, total));
    }
  }

  /// Prints a line of its own, below the bar.
  void say(const std::string& line) {
    clear();
    std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
  }

  /// Leaves the terminal on a fresh line.
  void clear() {
    if (terminal_ && drawn_) {
      std::fprintf(stderr, "\r\033[K");
      drawn_ = false;
    }
  }

 private:
  void draw(std::string line) {
    winsize size{};
    const size_t columns =
        ::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0 ? size.ws_col : 120;
    if (line.size() >= columns) {
      line.resize(columns - 1);
    }
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
    drawn_ = true;
  }

  bool terminal_;
  bool drawn_ = false;
  int64_t first_step_ = -1;
  double first_seconds_ = 0.0;
};

}  // namespace mtsam::cli
