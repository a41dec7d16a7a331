// Capability sets: bounding set trimmed, permitted = effective = the set, inheritable and ambient empty.
#pragma once
#include <string>
#include <vector>

namespace skiff {

int capability_from_name(const std::string& name);  // "CAP_CHOWN" -> 0; throws on unknown names
bool has_capability(const std::vector<int>& caps, int cap);

// Drops every capability not in caps from the bounding set (needs CAP_SETPCAP; call before setuid).
void drop_bounding_set(const std::vector<int>& caps);
// Sets effective = permitted = caps and inheritable = 0, clears the ambient set (call after setuid,
// with PR_SET_KEEPCAPS set so a uid change keeps the permitted set).
void set_process_capabilities(const std::vector<int>& caps);

}  // namespace skiff
