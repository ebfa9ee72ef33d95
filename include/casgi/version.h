#ifndef CASGI_VERSION_H
#define CASGI_VERSION_H

#define CASGI_VERSION_MAJOR 0
#define CASGI_VERSION_MINOR 1
#define CASGI_VERSION_PATCH 0
#define CASGI_VERSION_HEX                                                                          \
    ((CASGI_VERSION_MAJOR << 16) | (CASGI_VERSION_MINOR << 8) | (CASGI_VERSION_PATCH))

#if defined(_WIN32)
#define CASGI_EXTERN __declspec(dllexport)
#else
#define CASGI_EXTERN __attribute__((visibility("default")))
#endif

/* CASGI_VERSION_HEX of the library actually linked, which may differ from the header. */
CASGI_EXTERN unsigned casgi_version(void);
/* "MAJOR.MINOR.PATCH" of the library actually linked; a static string. */
CASGI_EXTERN const char *casgi_version_string(void);

#endif
