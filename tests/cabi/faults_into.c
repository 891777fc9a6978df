/* The fault plugin with wv_vectorize_into too (see faults.c). */
#define WV_FAULTS_INTO 1
#include "faults.c"
