/*
 * oomlab's sandbox ("pause") process for the local cluster's containerd.
 *
 * It holds a pod's namespaces open: it waits for signals, reaps any child that is
 * re-parented to it, and exits cleanly on SIGINT or SIGTERM. Built statically by
 * hack/local-cluster.sh so the image needs nothing but this one file.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    sigset_t wanted;
    int sig = 0;

    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        puts("oomlab-pause 1");
        return 0;
    }
    if (getpid() != 1) {
        fprintf(stderr, "oomlab-pause: warning: not running as pid 1\n");
    }

    /* Block the signals we care about and take them synchronously. */
    sigemptyset(&wanted);
    sigaddset(&wanted, SIGINT);
    sigaddset(&wanted, SIGTERM);
    sigaddset(&wanted, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &wanted, NULL) != 0) {
        perror("oomlab-pause: sigprocmask");
        return 1;
    }

    for (;;) {
        if (sigwait(&wanted, &sig) != 0) {
            continue;
        }
        if (sig == SIGCHLD) {
            while (waitpid(-1, NULL, WNOHANG) > 0) {
                /* reap every exited child */
            }
            continue;
        }
        /* SIGINT or SIGTERM: the sandbox is being stopped. */
        return 0;
    }
}
