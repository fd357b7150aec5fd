/*
 * arch.h - which instruction sets this build's kernels may use: the first
 * argument of every EMA_UKERNEL(...) line of the kernel lists (*.inc). A
 * list entry whose flag is 0 is never declared, tested or benchmarked.
 */
#ifndef EMA_KERNELS_ARCH_H
#define EMA_KERNELS_ARCH_H

#define EMA_ARCH_SCALAR 1
#if defined(__wasm_simd128__)
#define EMA_ARCH_WASMSIMD 1
#else
#define EMA_ARCH_WASMSIMD 0
#endif

#endif /* EMA_KERNELS_ARCH_H */
