/*
 * Packing int8 weights into the panel layout described in kernels_internal.h.
 */
#include "kernels_internal.h"

size_t beats_packed_weights_size(size_t rows, size_t columns) {
    if (rows == 0 || columns == 0 || columns > BEATS_MAX_COLUMNS) return 0;
    if (rows > (SIZE_MAX / 2) / BEATS_MAX_COLUMNS) return 0;
    const size_t rows_padded = beats_round_up(rows, BEATS_PANEL_COLUMNS);
    const size_t columns_padded = beats_round_up(columns, 4);
    const size_t panel_offset = beats_round_up(64 + 4 * rows_padded, 64);
    return panel_offset + rows_padded * columns_padded;
}

int beats_pack_weights(const int8_t *w, size_t w_stride, size_t rows, size_t columns, void *packed,
                       size_t packed_size) {
    if (w == NULL || packed == NULL || rows == 0 || columns == 0 || w_stride < columns) {
        return BEATS_ERROR_INVALID_ARGUMENT;
    }
    if (columns > BEATS_MAX_COLUMNS) return BEATS_ERROR_TOO_LARGE;
    const size_t needed = beats_packed_weights_size(rows, columns);
    if (needed == 0) return BEATS_ERROR_TOO_LARGE;
    if (packed_size < needed) return BEATS_ERROR_INVALID_ARGUMENT;
    if (((uintptr_t)packed % BEATS_PACKED_ALIGNMENT) != 0) return BEATS_ERROR_MISALIGNED;

    beats_packed_header header = {
        .magic = BEATS_PACKED_MAGIC,
        .version = BEATS_PACKED_VERSION,
        .rows = rows,
        .columns = columns,
        .rows_padded = beats_round_up(rows, BEATS_PANEL_COLUMNS),
        .columns_padded = beats_round_up(columns, 4),
        .reserved = {0, 0},
    };
    header.panel_offset = beats_round_up(64 + 4 * header.rows_padded, 64);
    char *base = (char *)packed;
    memset(base, 0, needed);

    int32_t *row_sums = (int32_t *)(void *)(base + 64);
    int8_t *panels = (int8_t *)(base + header.panel_offset);
    const size_t quads = (size_t)header.columns_padded / 4;
    const size_t full_quads = columns / 4, tail = columns % 4;
    for (size_t n = 0; n < rows; n++) {
        const int8_t *row = w + n * w_stride;
        int32_t sum = 0;
        int out_of_range = 0;
        for (size_t k = 0; k < columns; k++) {
            sum += row[k];
            out_of_range |= row[k] == -128;
        }
        if (out_of_range) return BEATS_ERROR_WEIGHT_OUT_OF_RANGE;
        row_sums[n] = sum;

        int8_t *panel = panels + (n / BEATS_PANEL_COLUMNS) * quads * BEATS_PANEL_BYTES_PER_QUAD;
        int8_t *column = panel + 4 * (n % BEATS_PANEL_COLUMNS);
        for (size_t q = 0; q < full_quads; q++) {
            memcpy(column + q * BEATS_PANEL_BYTES_PER_QUAD, row + 4 * q, 4);
        }
        if (tail != 0) memcpy(column + full_quads * BEATS_PANEL_BYTES_PER_QUAD, row + 4 * full_quads, tail);
    }
    /* The header goes in last: a buffer that failed part-way never looks valid. */
    memcpy(base, &header, sizeof header);
    return BEATS_OK;
}

int beats_packed_weights_shape(const void *packed, size_t *rows, size_t *columns) {
    beats_packed_view view;
    int status = beats_packed_open(packed, &view);
    if (status == BEATS_ERROR_MISALIGNED || status == BEATS_ERROR_INVALID_ARGUMENT) {
        status = BEATS_ERROR_BAD_PACKED_WEIGHTS;
    }
    if (status != BEATS_OK) return status;
    if (rows != NULL) *rows = view.rows;
    if (columns != NULL) *columns = view.columns;
    return BEATS_OK;
}
