#include "server/session/session_registry.h"

#include <iterator>
#include <random>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "server/core/status_macros.h"
#include "server/core/torch_guard.h"

namespace romed {
namespace {

constexpr char kPageTokenVersion[] = "v1";

absl::Status ValidateMetadata(const std::string& name,
                              const std::map<std::string, std::string>& labels) {
  if (name.size() > kMaxSessionNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("name is ", name.size(), " bytes; at most ",
                                                   kMaxSessionNameBytes, " are allowed"));
  }
  if (labels.size() > kMaxSessionLabels) {
    return absl::InvalidArgumentError(
        absl::StrCat(labels.size(), " labels; at most ", kMaxSessionLabels, " are allowed"));
  }
  for (const auto& [key, value] : labels) {
    if (key.empty()) return absl::InvalidArgumentError("a label key is empty");
    if (key.size() > kMaxSessionLabelKeyBytes) {
      return absl::InvalidArgumentError(absl::StrCat("label key \"", key.substr(0, 32), "...\" is ",
                                                     key.size(), " bytes; at most ",
                                                     kMaxSessionLabelKeyBytes, " are allowed"));
    }
    if (value.size() > kMaxSessionLabelValueBytes) {
      return absl::InvalidArgumentError(absl::StrCat("label \"", key, "\" has a value of ",
                                                     value.size(), " bytes; at most ",
                                                     kMaxSessionLabelValueBytes, " are allowed"));
    }
  }
  return absl::OkStatus();
}

absl::Status SessionNotFound(const std::string& id) {
  return absl::NotFoundError(
      absl::StrCat("session \"", id, "\" not found; create one with CreateSession"));
}

std::string EncodePageToken(const std::pair<int64_t, std::string>& key) {
  return absl::WebSafeBase64Escape(
      absl::StrCat(kPageTokenVersion, ":", key.first, ":", key.second));
}

absl::StatusOr<std::pair<int64_t, std::string>> DecodePageToken(const std::string& token) {
  const absl::Status bad = absl::InvalidArgumentError(
      absl::StrCat("page_token \"", token.substr(0, 64),
                   "\" is not a next_page_token returned by ListSessions; omit it to start from "
                   "the first page"));
  std::string text;
  if (!absl::WebSafeBase64Unescape(token, &text)) return bad;
  std::vector<std::string> parts = absl::StrSplit(text, absl::MaxSplits(':', 2));
  int64_t created_us = 0;
  if (parts.size() != 3 || parts[0] != kPageTokenVersion ||
      !absl::SimpleAtoi(parts[1], &created_us) || parts[2].empty()) {
    return bad;
  }
  return std::make_pair(created_us, parts[2]);
}

// "the stack holds edits 1, 2, 4" (at most 20 ids) or "the stack is empty".
std::string DescribeStack(const SessionState& state) {
  if (state.edits.empty()) return "the stack is empty";
  std::vector<int64_t> ids;
  for (const EditEntry& entry : state.edits) ids.push_back(entry.edit_id);
  constexpr size_t kShown = 20;
  if (ids.size() <= kShown) return absl::StrCat("the stack holds edits ", absl::StrJoin(ids, ", "));
  ids.erase(ids.begin(), ids.end() - kShown);
  return absl::StrCat("the stack holds ", state.edits.size(), " edits, the top ones ",
                      absl::StrJoin(ids, ", "));
}

}  // namespace

SessionRegistry::SessionRegistry(std::shared_ptr<SessionStore> store,
                                 SessionRegistryOptions options)
    : store_(std::move(store)), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<SessionRegistry>> SessionRegistry::Open(
    std::shared_ptr<SessionStore> store, SessionRegistryOptions options) {
  if (store == nullptr) return absl::InvalidArgumentError("SessionRegistry::Open: no store");
  std::unique_ptr<SessionRegistry> registry(
      new SessionRegistry(std::move(store), std::move(options)));
  ASSIGN_OR_RETURN(std::vector<StoredSession> stored, registry->store_->LoadAll());
  RETURN_IF_ERROR(registry->Restore(std::move(stored)));
  return registry;
}

absl::Status SessionRegistry::Restore(std::vector<StoredSession> stored) {
  for (StoredSession& s : stored) {
    if (s.info.model_checksum != options_.model_checksum) {
      return absl::FailedPreconditionError(absl::StrCat(
          "session \"", s.info.id,
          "\" in the session store was made on the base model with "
          "checksum ",
          s.info.model_checksum, ", but the loaded model's checksum is ", options_.model_checksum,
          "; start romed with the model the sessions were made on, or use another --state_dir"));
    }
    int64_t previous_id = 0;
    for (const EditEntry& entry : s.edits) {
      if (entry.edit_id <= previous_id || entry.edit_id >= s.info.next_edit_id) {
        return absl::DataLossError(absl::StrCat("session \"", s.info.id, "\": stored edit ",
                                                entry.edit_id, " is out of order (next id ",
                                                s.info.next_edit_id, ")"));
      }
      previous_id = entry.edit_id;
    }
    const OrderKey key{absl::ToUnixMicros(s.info.created), s.info.id};
    ASSIGN_OR_RETURN(SnapshotPtr state, MakeState(std::move(s.info), std::move(s.edits)));
    auto slot = std::make_shared<Slot>();
    {
      absl::MutexLock lock(&slot->state_mu);
      slot->state = std::move(state);
    }
    absl::MutexLock lock(&mu_);
    by_id_[key.second] = std::move(slot);
    by_creation_.insert(key);
  }
  return absl::OkStatus();
}

absl::Time SessionRegistry::Now() const {
  const absl::Time now = options_.clock ? options_.clock() : absl::Now();
  return absl::FromUnixMicros(absl::ToUnixMicros(now));  // as stored
}

absl::StatusOr<std::shared_ptr<SessionRegistry::Slot>> SessionRegistry::FindSlot(
    const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return SessionNotFound(id);
  return it->second;
}

absl::StatusOr<SessionRegistry::SnapshotPtr> SessionRegistry::MakeState(
    SessionInfo info, std::vector<EditEntry> edits) const {
  auto state = std::make_shared<SessionState>();
  std::vector<RankOneDelta> deltas;
  for (const EditEntry& entry : edits) {
    deltas.insert(deltas.end(), entry.deltas.begin(), entry.deltas.end());
  }
  ASSIGN_OR_RETURN(
      state->view,
      GuardTorch(absl::StrCat("building the edit view of session \"", info.id, "\""),
                 [&] { return EditView::Build(deltas, options_.device, options_.dtype); }));
  // Let each entry's deltas share the view's stacked factors where they are
  // the same values (same dtype and device), so a session holds one copy.
  const std::vector<RankOneDelta> views = state->view->deltas();
  size_t next = 0;
  for (EditEntry& entry : edits) {
    for (RankOneDelta& delta : entry.deltas) {
      const RankOneDelta& shared = views[next++];
      if (shared.u.dtype() == delta.u.dtype() && shared.u.device() == delta.u.device() &&
          shared.lambda.dtype() == delta.lambda.dtype() &&
          shared.lambda.device() == delta.lambda.device()) {
        delta = shared;
      }
    }
  }
  state->info = std::move(info);
  state->edits = std::move(edits);
  return SnapshotPtr(std::move(state));
}

std::string SessionRegistry::NewSessionId() {
  // std::random_device reads the OS entropy source (getrandom / /dev/urandom).
  thread_local std::random_device device;
  while (true) {
    const uint64_t bits = (static_cast<uint64_t>(device()) << 32) | device();
    std::string id = absl::StrCat("s-", absl::Hex(bits, absl::kZeroPad16));
    if (by_id_.count(id) == 0 && pending_ids_.count(id) == 0) return id;
  }
}

absl::StatusOr<SessionRegistry::SnapshotPtr> SessionRegistry::Create(
    const std::string& name, const std::map<std::string, std::string>& labels,
    const std::string& owner) {
  RETURN_IF_ERROR(ValidateMetadata(name, labels));
  SessionInfo info;
  {
    absl::MutexLock lock(&mu_);
    const int64_t count = static_cast<int64_t>(by_id_.size() + pending_ids_.size());
    if (count >= options_.limits.max_sessions) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "there are ", count, " sessions; the limit is ", options_.limits.max_sessions,
          " (--max_sessions); delete one with DeleteSession"));
    }
    info.id = NewSessionId();
    pending_ids_.insert(info.id);
  }
  info.name = name;
  info.labels = labels;
  info.owner = owner;
  info.model_checksum = options_.model_checksum;
  info.created = Now();
  info.updated = info.created;
  info.next_edit_id = 1;

  absl::StatusOr<SnapshotPtr> state = MakeState(info, {});
  absl::Status status = state.ok() ? store_->InsertSession(info) : state.status();
  absl::MutexLock lock(&mu_);
  pending_ids_.erase(info.id);
  if (!status.ok()) return status;
  auto slot = std::make_shared<Slot>();
  {
    absl::MutexLock state_lock(&slot->state_mu);
    slot->state = *state;
  }
  by_id_[info.id] = std::move(slot);
  by_creation_.insert({absl::ToUnixMicros(info.created), info.id});
  return *state;
}

absl::StatusOr<SessionRegistry::SnapshotPtr> SessionRegistry::Get(const std::string& id) const {
  ASSIGN_OR_RETURN(std::shared_ptr<Slot> slot, FindSlot(id));
  return slot->Load();
}

absl::StatusOr<SessionPage> SessionRegistry::List(int64_t page_size,
                                                  const std::string& page_token) const {
  if (page_size < 0 || page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat("page_size is ", page_size,
                                                   "; it must be in 0..", kMaxPageSize,
                                                   " (0 = ", kDefaultPageSize, ")"));
  }
  if (page_size == 0) page_size = kDefaultPageSize;
  OrderKey after;
  if (!page_token.empty()) {
    ASSIGN_OR_RETURN(after, DecodePageToken(page_token));
  }
  SessionPage page;
  absl::MutexLock lock(&mu_);
  auto it = page_token.empty() ? by_creation_.begin() : by_creation_.upper_bound(after);
  for (; it != by_creation_.end() && static_cast<int64_t>(page.sessions.size()) < page_size; ++it) {
    page.sessions.push_back(by_id_.at(it->second)->Load());
  }
  if (it != by_creation_.end()) {
    page.next_page_token = EncodePageToken(*std::prev(it));
  }
  return page;
}

absl::Status SessionRegistry::Delete(const std::string& id) {
  ASSIGN_OR_RETURN(std::shared_ptr<Slot> slot, FindSlot(id));
  absl::MutexLock writer(&slot->writer_mu);
  if (slot->deleted) return SessionNotFound(id);
  RETURN_IF_ERROR(store_->DeleteSession(id));
  slot->deleted = true;
  const SnapshotPtr state = slot->Load();
  absl::MutexLock lock(&mu_);
  by_id_.erase(id);
  by_creation_.erase({absl::ToUnixMicros(state->info.created), id});
  return absl::OkStatus();
}

absl::StatusOr<EditEntry> SessionRegistry::PushEdit(const std::string& id,
                                                    const EditComputation& compute) {
  ASSIGN_OR_RETURN(std::shared_ptr<Slot> slot, FindSlot(id));
  absl::MutexLock writer(&slot->writer_mu);
  if (slot->deleted) return SessionNotFound(id);
  const SnapshotPtr current = slot->Load();
  if (current->num_edits() >= options_.limits.max_edits_per_session) {
    return absl::ResourceExhaustedError(
        absl::StrCat("session \"", id, "\" holds ", current->num_edits(), " edits; the limit is ",
                     options_.limits.max_edits_per_session,
                     " (--max_edits_per_session); revert some with Revert or use another session"));
  }

  // `compute` runs torch code; an exception must not escape (GuardTorch).
  ASSIGN_OR_RETURN(EditEntry entry,
                   GuardTorch(absl::StrCat("computing an edit of session \"", id, "\""),
                              [&] { return compute(*current); }));
  if (entry.deltas.empty()) {
    return absl::InternalError(
        absl::StrCat("the edit computed for session \"", id, "\" has no deltas"));
  }
  entry.edit_id = current->info.next_edit_id;
  entry.created = Now();

  SessionInfo info = current->info;
  info.updated = entry.created;
  info.next_edit_id = entry.edit_id + 1;
  std::vector<EditEntry> edits = current->edits;
  edits.push_back(entry);
  ASSIGN_OR_RETURN(SnapshotPtr next, MakeState(std::move(info), std::move(edits)));

  RETURN_IF_ERROR(store_->AppendEdit(next->info, entry));
  absl::MutexLock lock(&slot->state_mu);
  slot->state = std::move(next);
  return entry;
}

absl::StatusOr<std::vector<EditEntry>> SessionRegistry::ImportEdits(
    const std::string& id, std::vector<EditEntry> entries) {
  if (entries.empty()) return absl::InvalidArgumentError("nothing to import: no edits");
  for (const EditEntry& entry : entries) {
    if (entry.deltas.empty()) {
      return absl::InvalidArgumentError("an imported edit has no deltas");
    }
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Slot> slot, FindSlot(id));
  absl::MutexLock writer(&slot->writer_mu);
  if (slot->deleted) return SessionNotFound(id);
  const SnapshotPtr current = slot->Load();
  if (current->num_edits() > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "session \"", id, "\" holds ", current->num_edits(),
        " edits; import into a new session (leave the session id empty) or an empty one"));
  }
  const int64_t limit = options_.limits.max_edits_per_session;
  if (static_cast<int64_t>(entries.size()) > limit) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the file holds ", entries.size(), " edits; a session may hold ", limit,
        " (--max_edits_per_session); raise the limit or export fewer edits"));
  }
  SessionInfo info = current->info;
  for (EditEntry& entry : entries) entry.edit_id = info.next_edit_id++;
  info.updated = Now();
  ASSIGN_OR_RETURN(SnapshotPtr next, MakeState(std::move(info), entries));

  RETURN_IF_ERROR(store_->AppendEdits(next->info, entries));
  absl::MutexLock lock(&slot->state_mu);
  slot->state = std::move(next);
  return entries;
}

absl::StatusOr<std::vector<int64_t>> SessionRegistry::Revert(const std::string& id,
                                                             RevertTarget target) {
  ASSIGN_OR_RETURN(std::shared_ptr<Slot> slot, FindSlot(id));
  absl::MutexLock writer(&slot->writer_mu);
  if (slot->deleted) return SessionNotFound(id);
  const SnapshotPtr current = slot->Load();
  const int64_t depth = current->num_edits();

  int64_t keep = 0;  // entries that stay
  if (target.kind == RevertTarget::Kind::kPop) {
    if (target.value < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("pop is ", target.value, "; it must be at least 1"));
    }
    if (target.value > depth) {
      return absl::InvalidArgumentError(absl::StrCat("cannot revert ", target.value,
                                                     " edits: session \"", id, "\" holds ", depth));
    }
    keep = depth - target.value;
  } else if (target.value < 0) {
    return absl::InvalidArgumentError(absl::StrCat("keep_up_to_id is ", target.value,
                                                   "; it must be 0 (revert all) or an edit id"));
  } else if (target.value != 0) {
    keep = -1;
    for (int64_t i = 0; i < depth; ++i) {
      if (current->edits[i].edit_id == target.value) keep = i + 1;
    }
    if (keep < 0) {
      return absl::NotFoundError(
          absl::StrCat("edit ", target.value, " is not on the stack of session \"", id, "\" (",
                       DescribeStack(*current), "); list the stack with ListEdits"));
    }
  }

  std::vector<int64_t> reverted;
  for (int64_t i = depth - 1; i >= keep; --i) reverted.push_back(current->edits[i].edit_id);
  if (reverted.empty()) return reverted;  // KeepUpTo the top entry: nothing to do

  SessionInfo info = current->info;
  info.updated = Now();
  std::vector<EditEntry> edits(current->edits.begin(), current->edits.begin() + keep);
  ASSIGN_OR_RETURN(SnapshotPtr next, MakeState(std::move(info), std::move(edits)));

  RETURN_IF_ERROR(store_->RemoveEdits(next->info, reverted));
  absl::MutexLock lock(&slot->state_mu);
  slot->state = std::move(next);
  return reverted;
}

absl::StatusOr<std::vector<EditEntry>> SessionRegistry::ListEdits(const std::string& id) const {
  ASSIGN_OR_RETURN(SnapshotPtr state, Get(id));
  return state->edits;
}

int64_t SessionRegistry::size() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(by_id_.size());
}

}  // namespace romed
