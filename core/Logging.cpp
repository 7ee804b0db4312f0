#include "Logging.h"

Q_LOGGING_CATEGORY(lcApp, "lamplighter.app", QtInfoMsg)
Q_LOGGING_CATEGORY(lcConfig, "lamplighter.config", QtInfoMsg)
Q_LOGGING_CATEGORY(lcOidc, "lamplighter.oidc", QtInfoMsg)
Q_LOGGING_CATEGORY(lcStore, "lamplighter.store", QtInfoMsg)
Q_LOGGING_CATEGORY(lcTls, "lamplighter.tls", QtInfoMsg)
Q_LOGGING_CATEGORY(lcProxy, "lamplighter.proxy", QtInfoMsg)
Q_LOGGING_CATEGORY(lcKube, "lamplighter.kube", QtInfoMsg)
Q_LOGGING_CATEGORY(lcSession, "lamplighter.session", QtInfoMsg)
