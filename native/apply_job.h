#pragma once

#include <napi.h>

#include <memory>

namespace carrier {

struct ByteBudget;

// Registers the ApplyJob class: one layer, compressed bytes in, extracted tree + digests out.
void init_apply_job(Napi::Env env, Napi::Object exports);
// Registers the AssembleJob class: tar-split + diff dir in, the original tar out.
void init_assemble_job(Napi::Env env, Napi::Object exports);
// Registers the DecompressJob class: compressed chunks in, decompressed chunks out, on a thread of its own.
void init_decompress_job(Napi::Env env, Napi::Object exports);
// Registers the CompressJob class: a layer's tar in, its compressed stream, digests and tar-split out.
void init_compress_job(Napi::Env env, Napi::Object exports);
// Registers diffLayer: an overlay upper directory in, its layer blob (tar, compressed as asked) and digests out.
void init_diff_job(Napi::Env env, Napi::Object exports);
void init_chunked_job(Napi::Env env, Napi::Object exports);
// Registers lockFile/unlockFile (fcntl OFD locks) and syncFs.
void init_store_ops(Napi::Env env, Napi::Object exports);
// Registers cloneTree: a directory tree copied with reflinks where possible, on a thread of its own.
void init_clone(Napi::Env env, Napi::Object exports);
// Registers overlayMount/overlayUnmount/overlayProbe: overlay mounts (new mount API or mount(2)) on own threads.
void init_mount(Napi::Env env, Napi::Object exports);
// Registers setDirQuota/getDirQuota: XFS/ext4 project quotas on a directory.
void init_quota(Napi::Env env, Napi::Object exports);
// Registers the ImageBudget class: a byte budget several ApplyJobs share.
void init_budget(Napi::Env env, Napi::Object exports);
// The budget an ImageBudget object holds; null for undefined/null; throws a TypeError for anything else.
std::shared_ptr<ByteBudget> budget_of(Napi::Env env, Napi::Value value);
// Registers discardTerminalEof: drops end-of-file markers pending on a canonical-mode terminal.
void init_tty(Napi::Env env, Napi::Object exports);
void init_map_file(Napi::Env env, Napi::Object exports);

}  // namespace carrier
