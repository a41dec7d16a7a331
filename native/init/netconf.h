// `skiff-init net ...`: bridge and veth plumbing over rtnetlink (see netconf.cc).
#pragma once

namespace skiff {

// argv[1] is "net"; returns the process exit code.
int net_main(int argc, char** argv);

}  // namespace skiff
