/*
 * abi.h - sizes private to one source file that ema_abi_value() reports
 * (src/abi.c), so that the number JS reads is the one the code uses.
 */
#ifndef EMA_ABI_H
#define EMA_ABI_H

#include <stdint.h>

/* Bookkeeping bytes per array of a shadow or backup region (src/ema.c). */
uint32_t ema_region_bytes_per_array(void);

/* Bytes of the parser's table row for one tensor (src/safetensors.c). */
uint32_t ema_st_tensor_bytes(void);

#endif /* EMA_ABI_H */
