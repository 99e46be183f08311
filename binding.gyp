{
  "targets": [
    {
      "target_name": "carrier",
      "sources": [
        "native/addon.cc",
        "native/apply_job.cc",
        "native/clone.cc",
        "native/common.cc",
        "native/compress_job.cc",
        "native/chunked_job.cc",
        "native/assemble_job.cc",
        "native/budget.cc",
        "native/decoder.cc",
        "native/decompress_job.cc",
        "native/diff_job.cc",
        "native/extractor.cc",
        "native/file_hash.cc",
        "native/fs_safe.cc",
        "native/gzip_isal.cc",
        "native/map_file.cc",
        "native/mount.cc",
        "native/parallel_compressor.cc",
        "native/partial_rebuild.cc",
        "native/quota.cc",
        "native/tar_reader.cc",
        "native/store_ops.cc",
        "native/tar_split.cc",
        "native/tty.cc",
        "native/write_pool.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags": ["-O2", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc": ["-std=gnu++17", "-fexceptions", "-fvisibility=hidden", "-fvisibility-inlines-hidden"],
      "ldflags": ["-static-libstdc++", "-Wl,--gc-sections"],
      "libraries": [
        "-Wl,-Bstatic", "-lzstd", "-Wl,-Bdynamic",
        "-Wl,--exclude-libs,ALL",
        "-Wl,--version-script=<(module_root_dir)/native/exports.map",
        "-pthread"
      ]
    }
  ]
}
