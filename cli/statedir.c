/* The MTA-STS state directory: its default and its creation. */
#include "statedir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


int cli_default_state_dir(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    int n;
    /* The XDG spec says a relative $XDG_STATE_HOME is invalid and ignored. */
    if (xdg != NULL && xdg[0] == '/')
        n = snprintf(buf, len, "%s/smtpc", xdg);
    else if (home != NULL && home[0] == '/')
        n = snprintf(buf, len, "%s/.local/state/smtpc", home);
    else
        return -1;
    return n > 0 && (size_t)n < len ? 0 : -1;
}

static int mkdir_one(const char *path)
{
    struct stat st;
    if (mkdir(path, 0700) == 0)
        return 0;
    if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (errno == EEXIST)
        errno = ENOTDIR;
    return -1;
}

int cli_mkdir_p(const char *path)
{
    char buf[CLI_STATE_PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir_one(buf);
        *p = '/';
        if (rc != 0)
            return -1;
    }
    return mkdir_one(buf);
}
