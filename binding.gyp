{
  "target_defaults": {
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
    "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"],
    "include_dirs": ["native"]
  },
  "targets": [
    {
      "target_name": "skiff_native",
      "sources": ["native/addon/addon.cc", "native/addon/device_filter.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"]
    },
    {
      "target_name": "skiff-init",
      "type": "executable",
      "sources": [
        "native/init/main.cc",
        "native/init/spec.cc",
        "native/init/rootfs.cc",
        "native/init/copyup.cc",
        "native/init/process.cc",
        "native/init/capabilities.cc",
        "native/init/seccomp.cc",
        "native/init/user.cc",
        "native/init/userns.cc",
        "native/init/sync.cc",
        "native/init/netconf.cc"
      ],
      "ldflags": ["-static"],
      "libraries": ["-l:libseccomp.a"]
    },
    {
      "target_name": "skiff-monitor",
      "type": "executable",
      "sources": [
        "native/monitor/main.cc",
        "native/monitor/monitor.cc",
        "native/monitor/container_io.cc",
        "native/monitor/log_writer.cc",
        "native/monitor/attach.cc",
        "native/monitor/json.cc",
        "native/monitor/proxy.cc",
        "native/monitor/util.cc"
      ],
      "ldflags": ["-static"]
    }
  ]
}
