#!/bin/sh
# credd's command, installed as /usr/bin/credd: the node and entry point of credd.service's ExecStart.
# umask 027 like the unit's UMask=0027, so files that `sudo -u credd credd import ...` writes get
# the modes the daemon would give them: group credd may read certificates, nobody else anything.
umask 027
exec /usr/bin/node /usr/lib/credd/dist/main.js "$@"
