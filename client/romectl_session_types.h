// What romectl's session, edit, revert, edits and stats commands were asked
// to do (parsed by romectl_session_args.h, run by romectl_session_commands.h):
// the API's request messages, ready to send.
#ifndef ROMED_CLIENT_ROMECTL_SESSION_TYPES_H_
#define ROMED_CLIENT_ROMECTL_SESSION_TYPES_H_

#include <string>

#include "romed/v1/model_editor.pb.h"

namespace romed::client {

// `romectl session ACTION`.
enum class SessionAction { kNone, kCreate, kGet, kList, kDelete };

struct EditInvocation {
  SessionAction action = SessionAction::kNone;  // session only
  std::string session_id;                       // session get|delete, edits
  romed::v1::CreateSessionRequest create;       // session create
  romed::v1::ListSessionsRequest list;          // session list
  romed::v1::EditRequest edit;                  // edit
  romed::v1::RevertRequest revert;              // revert
  romed::v1::ComputeStatsRequest stats;         // stats
  bool progress = true;                         // stats, edit: progress bar on stderr
};

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMECTL_SESSION_TYPES_H_
