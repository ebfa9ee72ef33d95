#ifndef CASGI_H
#define CASGI_H

/* The one include an embedder needs. */
#include "casgi/version.h"
#include "casgi/error.h"
#include "casgi/log.h"
#include "casgi/asgi.h"
#include "casgi/app.h"
#include "casgi/config.h"
#include "casgi/server.h"

#endif
