/* The helper's raw-object and listener commands (raw.c); 2 if argv is not one. */
#ifndef IPCX_HELPER_RAW_H
#define IPCX_HELPER_RAW_H
int helper_raw(int argc, char **argv);
#endif
