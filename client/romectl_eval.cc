#include "client/romectl_eval.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/counterfact_dataset.h"
#include "client/eval_plot.h"
#include "client/eval_report.h"
#include "client/eval_runner.h"
#include "client/romectl_commands.h"
#include "client/romectl_format.h"
#include "server/core/status_macros.h"

namespace romed::client {
namespace {

int ReportError(const absl::Status& status, std::ostream& err) {
  err << FormatError(status) << "\n";
  return kExitRpcError;
}

absl::Status WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << contents;
  file.close();
  if (!file) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

// "\r[#####.....] 37/100 editing  ETA 40 s" on `err`.
class ProgressBar {
 public:
  explicit ProgressBar(std::ostream& err) : err_(err) {}

  void Update(const EvalProgress& p) {
    if (p.phase != phase_) {
      if (!phase_.empty()) err_ << "\n";
      phase_ = p.phase;
      phase_start_ = absl::Now();
    }
    constexpr int kWidth = 30;
    const int filled = p.total > 0 ? static_cast<int>(kWidth * p.done / p.total) : 0;
    std::string eta;
    const double elapsed = absl::ToDoubleSeconds(absl::Now() - phase_start_);
    if (p.done > 0 && p.done < p.total && p.phase != "checkpoint") {
      eta = absl::StrFormat("  ETA %.0f s", elapsed / p.done * (p.total - p.done));
    }
    err_ << "\r[" << std::string(filled, '#') << std::string(kWidth - filled, '.') << "] "
         << p.done << "/" << p.total << " " << PhaseText(p.phase) << eta << "      "
         << std::flush;
  }

  void Finish() {
    if (!phase_.empty()) err_ << "\n" << std::flush;
  }

 private:
  static std::string PhaseText(const std::string& phase) {
    if (phase == "unedited") return "cases scored on the unedited model";
    if (phase == "editing") return "cases edited and scored";
    return "edits: measuring all edited cases and retention";
  }

  std::ostream& err_;
  std::string phase_;
  absl::Time phase_start_ = absl::Now();
};

absl::Status WriteOutputs(const EvalInvocation& e, const EvalReport& report,
                          const EvalSource& source) {
  if (!e.json_path.empty()) {
    RETURN_IF_ERROR(WriteFile(e.json_path, EvalReportToJson(report, source).dump(1) + "\n"));
  }
  if (!e.csv_path.empty()) {
    RETURN_IF_ERROR(WriteFile(e.csv_path, EvalCasesCsv(report)));
    if (report.mode == EvalMode::kSequential) {
      RETURN_IF_ERROR(WriteFile(CheckpointsCsvPath(e.csv_path), EvalCheckpointsCsv(report)));
    }
  }
  if (!e.svg_path.empty()) {
    const std::string title = absl::StrCat("Sequential ROME edits on ", report.model.model_dir(),
                                           " (", source.dataset, ")");
    RETURN_IF_ERROR(WriteFile(e.svg_path, RenderSequentialPlot(report.checkpoints, title)));
  }
  return absl::OkStatus();
}

}  // namespace

int RunEval(const Invocation& inv, const RomedClient& client, const CallOptions& call,
            std::ostream& out, std::ostream& err) {
  const EvalInvocation& e = inv.eval;
  absl::StatusOr<CounterFactDataset> data =
      ReadCounterFact(e.dataset, static_cast<size_t>(e.n));
  if (!data.ok()) return ReportError(data.status(), err);
  for (const RecordError& bad : data->errors) {
    err << "skipped " << FormatRecordError(bad) << "\n";
  }
  if (data->cases.empty()) {
    return ReportError(absl::InvalidArgumentError(absl::StrCat(
                           e.dataset, ": no usable CounterFact record (", data->errors.size(),
                           " bad of ", data->records_read, ")")),
                       err);
  }
  ProgressBar bar(err);
  EvalRunner::ProgressCallback on_progress;
  if (e.progress) on_progress = [&bar](const EvalProgress& p) { bar.Update(p); };
  absl::StatusOr<EvalReport> report = EvalRunner(client, e.options, call).Run(data->cases, on_progress);
  bar.Finish();
  if (!report.ok()) return ReportError(report.status(), err);
  const EvalSource source{e.dataset, &*data};
  if (absl::Status written = WriteOutputs(e, *report, source); !written.ok()) {
    return ReportError(written, err);
  }
  if (inv.json) {
    out << DumpJson(EvalReportToJson(*report, source)) << "\n";
  } else {
    out << FormatEvalReport(*report, source);
  }
  return kExitOk;
}

}  // namespace romed::client
