// romectl's text for people from the session, edit, revert, edits and stats
// replies (--json prints ProtoToJson of the same replies instead). Pure
// functions of the replies, so tests compare them with expected strings.
#ifndef ROMED_CLIENT_ROMECTL_SESSION_FORMAT_H_
#define ROMED_CLIENT_ROMECTL_SESSION_FORMAT_H_

#include <string>

#include "romed/v1/model_editor.pb.h"

namespace romed::client {

// "2024-05-01 12:00:00 UTC" (seconds precision).
std::string FormatUnixTime(double unix_s);

// One "key  value" line per field of a session.
std::string FormatSession(const romed::v1::Session& session);
// One line per session (id, edits, created, name, labels), then the next
// page token if there is one.
std::string FormatSessionList(const romed::v1::ListSessionsResponse& response);
// The new edit: per rewrite the site, probabilities before -> after, norms,
// the loss curve's ends and the time split; then the session's depth.
std::string FormatEditResponse(const romed::v1::EditResponse& response);
// "reverted edits 3, 2; session s-.. holds 1 edit (top: 1)".
std::string FormatRevert(const romed::v1::RevertResponse& response);
// One block per stack entry, bottom first; "no edits" when empty.
std::string FormatEdits(const romed::v1::ListEditsResponse& response);
// The last ComputeStats message: layer, tokens, corpus, cached or computed, cache file.
std::string FormatStatsResult(const romed::v1::ComputeStatsProgress& last);
// "[#######.............]  35%  1200/3400 tokens  ETA 4 s" (no newline).
std::string FormatProgressBar(const romed::v1::ComputeStatsProgress& progress, int width = 30);

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMECTL_SESSION_FORMAT_H_
