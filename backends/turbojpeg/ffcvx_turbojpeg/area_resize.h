/*
 * Streaming area (box-footprint) downscaling of 8-bit pixel rows.
 *
 * The maths are OpenCV's INTER_AREA for shrinking: output pixel (dx, dy)
 * covers the source rectangle [dx*sx, (dx+1)*sx) x [dy*sy, (dy+1)*sy) with
 * sx = src_w / dst_w and sy = src_h / dst_h (both >= 1); its value is the
 * mean of the source pixels under that footprint, each weighted by the
 * fraction of it that is covered, rounded to the nearest integer (halves
 * up).  Partial coverages under 1e-3 of a pixel are dropped, as OpenCV does.
 *
 * Separable and streaming: each source row is pushed once, in order, and
 * added (weighted by its vertical coverage) into a float accumulator row of
 * the source's width; a source row falls under at most two output rows,
 * since sy >= 1.  When an output row's last source row is in, the
 * accumulator is resampled horizontally and written.  The vertical pass
 * goes first because it is a contiguous multiply-add the compiler
 * vectorises, and it leaves the gather-like horizontal pass dst_h times
 * instead of src_h times (measured 3x faster than horizontal-first).  The
 * source image never has to exist as a whole: a JPEG decoder can feed
 * scanlines straight in.
 *
 * The horizontal pass sums each output column's run of whole pixels
 * without weights (one 4-float add per RGB pixel) and weighs only the
 * partial pixels at its two ends.  Together with an AVX2 clone of the
 * row loops this made the resampler 2x faster (1.7 ms vs 3.4 ms per
 * 1-Mpx photo to 512 px; OpenCV INTER_AREA with 2 threads: 4.4 ms).  The
 * order of additions is fixed by the code and FMA contraction is off, so
 * every CPU writes the same bytes.
 *
 * Weights are coverages in pixel units (1.0 for a whole pixel) and the
 * normalisation is one division by the covered area at the end.  With
 * integer ratios every sum is then an exact integer in float (below 2^24
 * for areas up to 65793 pixels), so the result is the exactly rounded mean.
 *
 * Plain C, no libjpeg, no Python: safe to call without the GIL.
 */
#ifndef FFCVX_AREA_RESIZE_H
#define FFCVX_AREA_RESIZE_H

#include <stddef.h>
#include <stdint.h>

#define FFCVX_AREA_OK 0
#define FFCVX_AREA_NO_MEMORY (-1)
#define FFCVX_AREA_BAD_ARGUMENT (-2)

/* One coverage entry: source index `src` adds `weight` of itself to output
 * index `dst` (indices in pixels, not bytes). */
typedef struct {
    int src;
    int dst;
    float weight;
} ffcvx_area_entry;

/* One output column's footprint: w_left of pixel `left`, the `count` whole
 * pixels from `start`, w_right of pixel `right` (weights 0 when absent). */
typedef struct {
    int left, start, count, right;
    float w_left, w_right;
} ffcvx_area_span;

typedef struct {
    int src_w, src_h, dst_w, dst_h, channels;
    ffcvx_area_span *xspans;    /* per output column (dst_w) */
    float *xsum;                /* per output column: sum of its coverages */
    float *xarea;               /* xsum repeated per channel (dst_w * channels) */
    float *rowsum;              /* one output row's sums (dst_w * channels + 4) */
    ffcvx_area_entry *ytab;     /* vertical entries, ordered by dst then src */
    int ny;
    float *ysum;                /* per output row: sum of its coverages */
    float *acc;                 /* vertical sum of the output row, src_w * channels (+ 4) */
    int next_src_row;           /* rows pushed so far */
    int next_entry;             /* first vertical entry not yet applied */
    int cur_dst_row;            /* output row in acc, -1 before the first */
} ffcvx_area;

/* Prepare a src_w x src_h -> dst_w x dst_h resampler of `channels` (1..4)
 * interleaved channels.  Needs 1 <= dst <= src on both axes.  Returns
 * FFCVX_AREA_OK, FFCVX_AREA_BAD_ARGUMENT or FFCVX_AREA_NO_MEMORY; on any
 * return ffcvx_area_free() may (and must, on OK) be called. */
int ffcvx_area_init(ffcvx_area *a, int src_w, int src_h, int dst_w, int dst_h, int channels);

/* Push the next source row (src_w * channels bytes).  Output rows that are
 * complete are written to dst + dy * dst_stride (dst_w * channels bytes
 * each).  Returns FFCVX_AREA_OK, or FFCVX_AREA_BAD_ARGUMENT when all rows
 * have already been pushed. */
int ffcvx_area_push(ffcvx_area *a, const uint8_t *src_row, uint8_t *dst, ptrdiff_t dst_stride);

/* Whether every output row has been written (all source rows pushed). */
int ffcvx_area_done(const ffcvx_area *a);

/* Resample a whole image (convenience for tests and in-memory pixels). */
int ffcvx_area_resize(const uint8_t *src, int src_w, int src_h, ptrdiff_t src_stride,
                      uint8_t *dst, int dst_w, int dst_h, ptrdiff_t dst_stride, int channels);

void ffcvx_area_free(ffcvx_area *a);

#endif  /* FFCVX_AREA_RESIZE_H */
