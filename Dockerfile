# The sandbox image: a Python interpreter and the stdlib-only fork server
# (sandbox/runner.py) as the container's main process (PID 1).
#
# With a registry:   docker build -t collapse-bench-sandbox:latest .
# Without one:       collapse-bench sandbox build   (builds a Debian base with
#                    debootstrap from the apt mirror, then this file on top of it)
# The pool adds the isolation at run time: no network, read-only root, tmpfs /tmp,
# memory/pids/CPU limits, no-new-privileges, and all capabilities dropped except
# SETUID, SETGID and KILL for the runner, which starts as root and runs every program
# under another, unprivileged uid (`--program-uid`; the pool picks a random one).
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

# Written directly rather than with useradd: minimal bases may not ship it.
RUN echo 'sandbox:x:10001:10001:sandbox:/tmp:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'sandbox:x:10001:' >> /etc/group \
 && mkdir -p /opt/collapse-bench

COPY sandbox/runner.py /opt/collapse-bench/runner.py
RUN chmod 0444 /opt/collapse-bench/runner.py

# A fixed hash seed keeps set/dict iteration order, and so verdicts, reproducible.
ENV PYTHONHASHSEED=0 \
    PYTHONDONTWRITEBYTECODE=1 \
    LANG=C.UTF-8

WORKDIR /tmp
ENTRYPOINT ["python3", "-s", "/opt/collapse-bench/runner.py"]
CMD ["--scratch", "/tmp", "--wipe", "/dev/shm", "--wipe", "/dev/mqueue", "--program-uid", "10001"]
