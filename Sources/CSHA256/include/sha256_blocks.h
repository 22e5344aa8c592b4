#ifndef BEATS_SHA256_BLOCKS_H
#define BEATS_SHA256_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

/// Runs the SHA-256 compression function over `blocks` consecutive 64-byte blocks at `data`,
/// updating the eight state words `state[0..7]` (a..h, host order). Padding is the caller's job.
/// Uses the x86 SHA extensions when the CPU has them, portable C otherwise.
void beats_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks);

/// 1 when beats_sha256_blocks uses the CPU's SHA instructions, else 0 (for benchmarks).
int beats_sha256_uses_sha_extensions(void);

#endif
