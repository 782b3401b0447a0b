# The parts of libjpeg's API (jpeglib.h) and of the setjmp wrappers
# (_errors.h) that the two extension modules use, declared once.
# Every libjpeg call goes through an ffcvx_jpeg_* wrapper, which returns
# nonzero instead of longjmp-ing out of the caller (see _errors.h).

cdef extern from "jpeglib.h" nogil:
    ctypedef unsigned int JDIMENSION
    ctypedef unsigned char JSAMPLE
    ctypedef JSAMPLE *JSAMPROW
    ctypedef JSAMPROW *JSAMPARRAY
    ctypedef int boolean

    ctypedef enum J_COLOR_SPACE:
        JCS_UNKNOWN
        JCS_GRAYSCALE
        JCS_RGB
        JCS_YCbCr
        JCS_CMYK
        JCS_YCCK

    ctypedef enum J_DCT_METHOD:
        JDCT_ISLOW
        JDCT_IFAST
        JDCT_FLOAT

    struct jpeg_error_mgr:
        int msg_code

    struct jpeg_decompress_struct:
        jpeg_error_mgr *err
        JDIMENSION image_width
        JDIMENSION image_height
        int num_components
        J_COLOR_SPACE jpeg_color_space
        J_COLOR_SPACE out_color_space
        unsigned int scale_num
        unsigned int scale_denom
        boolean do_fancy_upsampling
        J_DCT_METHOD dct_method
        JDIMENSION output_width
        JDIMENSION output_height
        int output_components
        JDIMENSION output_scanline

    struct jpeg_compress_struct:
        jpeg_error_mgr *err
        JDIMENSION image_width
        JDIMENSION image_height
        int input_components
        J_COLOR_SPACE in_color_space
        J_DCT_METHOD dct_method
        boolean optimize_coding
        JDIMENSION next_scanline


cdef extern from "_errors.h" nogil:
    ctypedef struct ffcvx_jpeg_error_mgr:
        pass
    void ffcvx_jpeg_error_init(ffcvx_jpeg_error_mgr *mgr, char *msg, size_t msg_len)

    # decompression
    int ffcvx_jpeg_create(jpeg_decompress_struct *cinfo, ffcvx_jpeg_error_mgr *mgr)
    int ffcvx_jpeg_read_header(jpeg_decompress_struct *cinfo,
                               const unsigned char *src, unsigned long src_len)
    int ffcvx_jpeg_calc_dimensions(jpeg_decompress_struct *cinfo)
    int ffcvx_jpeg_start(jpeg_decompress_struct *cinfo)
    int ffcvx_jpeg_crop(jpeg_decompress_struct *cinfo, JDIMENSION *xoffset,
                        JDIMENSION *width)
    int ffcvx_jpeg_skip(jpeg_decompress_struct *cinfo, JDIMENSION n)
    int ffcvx_jpeg_read(jpeg_decompress_struct *cinfo, JSAMPARRAY rows,
                        JDIMENSION max_lines, JDIMENSION *got)
    int ffcvx_jpeg_alloc_rows(jpeg_decompress_struct *cinfo, JDIMENSION row_bytes,
                              JDIMENSION nrows, JSAMPARRAY *rows)
    int ffcvx_jpeg_destroy(jpeg_decompress_struct *cinfo)

    # compression
    int ffcvx_jpeg_create_compress(jpeg_compress_struct *cinfo, ffcvx_jpeg_error_mgr *mgr)
    int ffcvx_jpeg_mem_dest(jpeg_compress_struct *cinfo, unsigned char **outbuffer,
                            unsigned long *outsize)
    int ffcvx_jpeg_set_defaults_quality(jpeg_compress_struct *cinfo, int quality,
                                        boolean force_baseline)
    int ffcvx_jpeg_start_compress(jpeg_compress_struct *cinfo)
    int ffcvx_jpeg_write(jpeg_compress_struct *cinfo, JSAMPARRAY rows, JDIMENSION n,
                         JDIMENSION *written)
    int ffcvx_jpeg_finish_compress(jpeg_compress_struct *cinfo)
    int ffcvx_jpeg_destroy_compress(jpeg_compress_struct *cinfo)
