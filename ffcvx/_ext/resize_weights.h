/* Filter weights of ffcvx's antialiased resize (resize_weights.c). */
#ifndef FFCVX_RESIZE_WEIGHTS_H
#define FFCVX_RESIZE_WEIGHTS_H

#include <stdint.h>

#include "resize_kernels.h"

/* Fixed-point weights of one axis, in_size -> out_size, at most `taps` per
 * output: bounds[2i] = first input index of output i, bounds[2i + 1] = its
 * number of taps, coef[i * taps ..] = its weights. */
FFCVX_RK_HIDDEN void ffcvx_rk_coefficients(int64_t in_size, int64_t out_size, int64_t taps,
                                           int32_t *bounds, int16_t *coef);

/* Reverse the order of an axis' output positions in place (a mirrored resize). */
FFCVX_RK_HIDDEN void ffcvx_rk_mirror_table(int64_t out_size, int64_t taps, int32_t *bounds,
                                           int16_t *coef);

#endif /* FFCVX_RESIZE_WEIGHTS_H */
