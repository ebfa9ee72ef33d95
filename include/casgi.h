#ifndef CASGI_H
#define CASGI_H

/* The one include an embedder needs. */
#include "casgi/app.h"
#include "casgi/asgi.h"
#include "casgi/config.h"
#include "casgi/error.h"
#include "casgi/log.h"
#include "casgi/server.h"
#include "casgi/version.h"

#endif
