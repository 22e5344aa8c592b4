int beats_kernels_placeholder(void);
