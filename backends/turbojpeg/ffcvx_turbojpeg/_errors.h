/*
 * Error handling for ffcvx_turbojpeg: libjpeg errors become status codes.
 *
 * libjpeg reports a fatal error by calling err->error_exit, whose default
 * implementation prints the message and calls exit().  A library that runs
 * inside a training job must never do that, so this header provides an error
 * manager whose error_exit formats the message into a caller-owned buffer and
 * longjmp()s back to the guarded call that was running.
 *
 * setjmp() must be called in a frame that is still live when libjpeg fails,
 * and locals changed between setjmp() and longjmp() are indeterminate in that
 * frame.  Rather than call setjmp() from Cython-generated code (which keeps
 * temporaries the C standard says nothing about), every libjpeg entry point
 * that can fail is wrapped here in a tiny function that does nothing but
 * setjmp() and the call.  The wrappers return 0 on success and
 * FFCVX_JPEG_CORRUPT after a libjpeg error; the message is then in
 * mgr->msg (when the caller gave a buffer).
 *
 * Warnings (emit_message with level -1) that mean the pixel data is damaged
 * -- premature end of file, bad Huffman code, premature end of a data
 * segment, lost sync, bad progression -- are treated like errors: silently
 * grey or garbled training images are worse than a reported failure.
 * Warnings about harmless oddities (extraneous bytes between markers,
 * unknown JFIF revision, unknown Adobe transform, bad ICC marker) are
 * ignored, as are trace messages (level > 0).
 *
 * The same error manager guards compression (ffcvx_jpeg_create_compress
 * and the calls after it, used by the encoder of _libjpeg_write.pyx): no
 * libjpeg call that can fail runs outside a wrapper.
 *
 * Everything is static: this header is included by each Cython module of
 * the package (_libjpeg.pyx, _libjpeg_write.pyx), each using a subset of
 * the wrappers, hence FFCVX_STATIC (static, and no -Wunused-function
 * warning for the ones a module does not call).
 */
#ifndef FFCVX_TURBOJPEG_ERRORS_H
#define FFCVX_TURBOJPEG_ERRORS_H

#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

#define FFCVX_JPEG_CORRUPT (-1)

#if defined(__GNUC__)
#define FFCVX_STATIC static __attribute__((unused))
#else
#define FFCVX_STATIC static
#endif

typedef struct {
    struct jpeg_error_mgr pub;  /* must be first: libjpeg sees only this */
    jmp_buf jump;
    char *msg;                  /* caller's message buffer, or NULL */
    size_t msg_len;             /* its size in bytes, including the NUL */
} ffcvx_jpeg_error_mgr;

/* Copy libjpeg's formatted message for the current msg_code into msg. */
FFCVX_STATIC void ffcvx_jpeg_store_message(j_common_ptr cinfo)
{
    ffcvx_jpeg_error_mgr *mgr = (ffcvx_jpeg_error_mgr *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    if (mgr->msg == NULL || mgr->msg_len == 0)
        return;
    text[0] = '\0';
    (*cinfo->err->format_message)(cinfo, text);
    snprintf(mgr->msg, mgr->msg_len, "%s", text);
}

FFCVX_STATIC void ffcvx_jpeg_error_exit(j_common_ptr cinfo)
{
    ffcvx_jpeg_error_mgr *mgr = (ffcvx_jpeg_error_mgr *)cinfo->err;
    ffcvx_jpeg_store_message(cinfo);
    longjmp(mgr->jump, 1);
}

/* libjpeg calls this only through emit_message/error_exit; ours never
 * prints, it keeps the text for the caller. */
FFCVX_STATIC void ffcvx_jpeg_output_message(j_common_ptr cinfo)
{
    ffcvx_jpeg_store_message(cinfo);
}

FFCVX_STATIC int ffcvx_jpeg_warning_is_fatal(int code)
{
    switch (code) {
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_JPEG_EOF:
    case JWRN_MUST_RESYNC:
    case JWRN_NOT_SEQUENTIAL:
    case JWRN_BOGUS_PROGRESSION:
    case JWRN_ARITH_BAD_CODE:
        return 1;
    default:
        return 0;
    }
}

FFCVX_STATIC void ffcvx_jpeg_emit_message(j_common_ptr cinfo, int msg_level)
{
    ffcvx_jpeg_error_mgr *mgr = (ffcvx_jpeg_error_mgr *)cinfo->err;
    if (msg_level < 0) {
        cinfo->err->num_warnings++;
        if (ffcvx_jpeg_warning_is_fatal(cinfo->err->msg_code)) {
            ffcvx_jpeg_store_message(cinfo);
            longjmp(mgr->jump, 1);
        }
    }
    /* trace messages and harmless warnings: ignored */
}

/* Set up the error manager; call before jpeg_create_decompress. */
FFCVX_STATIC void ffcvx_jpeg_error_init(ffcvx_jpeg_error_mgr *mgr, char *msg, size_t msg_len)
{
    jpeg_std_error(&mgr->pub);
    mgr->pub.error_exit = ffcvx_jpeg_error_exit;
    mgr->pub.output_message = ffcvx_jpeg_output_message;
    mgr->pub.emit_message = ffcvx_jpeg_emit_message;
    mgr->msg = msg;
    mgr->msg_len = msg_len;
    if (msg != NULL && msg_len > 0)
        msg[0] = '\0';
}

#define FFCVX_GUARD(cinfo)                                                   \
    if (setjmp(((ffcvx_jpeg_error_mgr *)(cinfo)->err)->jump))                \
        return FFCVX_JPEG_CORRUPT

/* The guarded calls.  Each returns 0 or FFCVX_JPEG_CORRUPT. */

FFCVX_STATIC int ffcvx_jpeg_create(j_decompress_ptr cinfo, ffcvx_jpeg_error_mgr *mgr)
{
    cinfo->err = &mgr->pub;
    FFCVX_GUARD(cinfo);
    jpeg_create_decompress(cinfo);
    return 0;
}

FFCVX_STATIC int ffcvx_jpeg_read_header(j_decompress_ptr cinfo,
                                  const unsigned char *src, unsigned long src_len)
{
    FFCVX_GUARD(cinfo);
    jpeg_mem_src(cinfo, src, src_len);
    if (jpeg_read_header(cinfo, TRUE) != JPEG_HEADER_OK) {
        /* With require_image=TRUE, libjpeg errors out instead; keep a
         * message anyway in case a future version returns. */
        cinfo->err->msg_code = JERR_NO_IMAGE;
        ffcvx_jpeg_store_message((j_common_ptr)cinfo);
        return FFCVX_JPEG_CORRUPT;
    }
    return 0;
}

FFCVX_STATIC int ffcvx_jpeg_calc_dimensions(j_decompress_ptr cinfo)
{
    FFCVX_GUARD(cinfo);
    jpeg_calc_output_dimensions(cinfo);
    return 0;
}

FFCVX_STATIC int ffcvx_jpeg_start(j_decompress_ptr cinfo)
{
    FFCVX_GUARD(cinfo);
    if (!jpeg_start_decompress(cinfo)) {
        /* only possible with a suspending data source; jpeg_mem_src is not */
        return FFCVX_JPEG_CORRUPT;
    }
    return 0;
}

FFCVX_STATIC int ffcvx_jpeg_crop(j_decompress_ptr cinfo, JDIMENSION *xoffset, JDIMENSION *width)
{
    FFCVX_GUARD(cinfo);
    jpeg_crop_scanline(cinfo, xoffset, width);
    return 0;
}

/* Skip exactly n rows; a short skip (end of image) is corrupt data. */
FFCVX_STATIC int ffcvx_jpeg_skip(j_decompress_ptr cinfo, JDIMENSION n)
{
    FFCVX_GUARD(cinfo);
    if (jpeg_skip_scanlines(cinfo, n) != n)
        return FFCVX_JPEG_CORRUPT;
    return 0;
}

/* Read up to max_lines rows; *got receives how many were read. */
FFCVX_STATIC int ffcvx_jpeg_read(j_decompress_ptr cinfo, JSAMPARRAY rows,
                           JDIMENSION max_lines, JDIMENSION *got)
{
    FFCVX_GUARD(cinfo);
    *got = jpeg_read_scanlines(cinfo, rows, max_lines);
    return 0;
}

/* Allocate rows in the image pool (freed by jpeg_destroy_decompress). */
FFCVX_STATIC int ffcvx_jpeg_alloc_rows(j_decompress_ptr cinfo, JDIMENSION row_bytes,
                                 JDIMENSION nrows, JSAMPARRAY *rows)
{
    FFCVX_GUARD(cinfo);
    *rows = (*cinfo->mem->alloc_sarray)((j_common_ptr)cinfo, JPOOL_IMAGE,
                                        row_bytes, nrows);
    return 0;
}

/* jpeg_destroy_decompress cannot fail in practice, but it goes through the
 * memory manager, so guard it too: a longjmp into a dead frame is the one
 * thing that must never happen. */
FFCVX_STATIC int ffcvx_jpeg_destroy(j_decompress_ptr cinfo)
{
    FFCVX_GUARD(cinfo);
    jpeg_destroy_decompress(cinfo);
    return 0;
}

/* Compression.  The caller owns *outbuffer after ffcvx_jpeg_mem_dest
 * (libjpeg mallocs and grows it, updating *outbuffer as it goes) and must
 * free() it whatever the status, also after an error. */

FFCVX_STATIC int ffcvx_jpeg_create_compress(j_compress_ptr cinfo, ffcvx_jpeg_error_mgr *mgr)
{
    cinfo->err = &mgr->pub;
    FFCVX_GUARD(cinfo);
    jpeg_create_compress(cinfo);
    return 0;
}

FFCVX_STATIC int ffcvx_jpeg_mem_dest(j_compress_ptr cinfo, unsigned char **outbuffer,
                                     unsigned long *outsize)
{
    FFCVX_GUARD(cinfo);
    jpeg_mem_dest(cinfo, outbuffer, outsize);
    return 0;
}

/* jpeg_set_defaults, then the quality's scaled standard tables; image_width,
 * image_height, input_components and in_color_space must be set before. */
FFCVX_STATIC int ffcvx_jpeg_set_defaults_quality(j_compress_ptr cinfo, int quality,
                                                 boolean force_baseline)
{
    FFCVX_GUARD(cinfo);
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, quality, force_baseline);
    return 0;
}

FFCVX_STATIC int ffcvx_jpeg_start_compress(j_compress_ptr cinfo)
{
    FFCVX_GUARD(cinfo);
    jpeg_start_compress(cinfo, TRUE);
    return 0;
}

/* Write up to n rows; *written receives how many libjpeg took. */
FFCVX_STATIC int ffcvx_jpeg_write(j_compress_ptr cinfo, JSAMPARRAY rows, JDIMENSION n,
                                  JDIMENSION *written)
{
    FFCVX_GUARD(cinfo);
    *written = jpeg_write_scanlines(cinfo, rows, n);
    return 0;
}

FFCVX_STATIC int ffcvx_jpeg_finish_compress(j_compress_ptr cinfo)
{
    FFCVX_GUARD(cinfo);
    jpeg_finish_compress(cinfo);
    return 0;
}

FFCVX_STATIC int ffcvx_jpeg_destroy_compress(j_compress_ptr cinfo)
{
    FFCVX_GUARD(cinfo);
    jpeg_destroy_compress(cinfo);
    return 0;
}

#endif  /* FFCVX_TURBOJPEG_ERRORS_H */
