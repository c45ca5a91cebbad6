/* http_server.c — starting and stopping the server under test for `locara bench http`.
 *
 * The command runs through /bin/sh -c in its own process group (so a wrapper script and the
 * server it starts are signalled together), with its output appended to a log file. Readiness
 * is GET /health == 200, or GET /v1/models == 200 for servers without /health. Stopping is
 * SIGTERM to the group, then SIGKILL after a grace period; if the benchmark itself is killed,
 * the server gets SIGTERM from the kernel (PR_SET_PDEATHSIG). Not here: any HTTP measurement.
 */
#include "bench/http.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_sec(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

int lc_server_alive(lc_server_proc *sp) {
    if (sp->pid <= 0 || sp->exited) return 0;
    int status;
    pid_t w = waitpid(sp->pid, &status, WNOHANG);
    if (w == sp->pid) {
        sp->exited = 1;
        sp->status = status;
        return 0;
    }
    return 1;
}

void lc_server_describe_exit(const lc_server_proc *sp, char *buf, size_t cap) {
    if (!sp->exited) snprintf(buf, cap, "still running");
    else if (WIFEXITED(sp->status)) snprintf(buf, cap, "exited with status %d", WEXITSTATUS(sp->status));
    else if (WIFSIGNALED(sp->status)) snprintf(buf, cap, "killed by signal %d", WTERMSIG(sp->status));
    else snprintf(buf, cap, "ended (wait status %d)", sp->status);
}

/* In the forked child, as leader of the server's process group: runs cmd through /bin/sh in a
 * grandchild and waits for it, passing its exit status or signal on. It exists because the
 * shell may fork the server instead of exec'ing it: when the benchmark dies, the kernel sends
 * this supervisor SIGTERM (PR_SET_PDEATHSIG) and it forwards that to the whole group, then
 * SIGKILL 10 s later: a server busy with a long prefill may finish it before it honours SIGTERM
 * (llama-server does), and nobody is left to stop it. */
static void on_alarm(int sig) {
    (void)sig;
    kill(0, SIGKILL);
}

static void on_parent_death(int sig) {
    signal(sig, SIG_IGN);
    signal(SIGALRM, on_alarm);
    kill(0, SIGTERM);
    alarm(10);
}

static _Noreturn void supervise(const char *cmd, pid_t parent) {
    signal(SIGTERM, on_parent_death);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) kill(0, SIGTERM); /* the benchmark died before prctl */
    pid_t g = fork();
    if (g == 0) {
        signal(SIGTERM, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (g > 0 && waitpid(g, &status, 0) < 0 && errno == EINTR) {}
    if (g > 0 && WIFSIGNALED(status)) {
        signal(WTERMSIG(status), SIG_DFL);
        raise(WTERMSIG(status));
    }
    _exit(g > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : 127);
}

lc_status lc_server_start(const char *cmd, const char *log_path, const char *base_url,
                          const char *api_key, double startup_timeout_s, lc_server_proc *sp) {
    memset(sp, 0, sizeof *sp);
    int logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0) return lc_fail(LC_ERR_IO, "cannot open server log %s: %s", log_path, strerror(errno));
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(logfd);
        return lc_fail(LC_ERR_IO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        supervise(cmd, parent);
    }
    setpgid(pid, pid); /* both sides set it, so signals can't race the child's own call */
    close(logfd);
    sp->pid = pid;
    double t0 = lc_time_sec();
    while (lc_time_sec() - t0 < startup_timeout_s) {
        if (!lc_server_alive(sp)) {
            char how[64];
            lc_server_describe_exit(sp, how, sizeof how);
            return lc_fail(LC_ERR_IO, "server `%s` %s before becoming ready (see %s)", cmd, how, log_path);
        }
        long h = lc_http_get_status(base_url, "/health", api_key, 2.0);
        if (h == 200) return LC_OK;
        if (h == 404 && lc_http_get_status(base_url, "/v1/models", api_key, 2.0) == 200) return LC_OK;
        sleep_sec(0.1);
    }
    lc_server_stop(sp, 2.0);
    return lc_fail(LC_ERR_IO, "server `%s` not ready at %s/health within %.0f s (see %s)", cmd,
                   base_url, startup_timeout_s, log_path);
}

void lc_server_stop(lc_server_proc *sp, double grace_s) {
    if (sp->pid <= 0) return;
    if (!sp->exited) {
        kill(-sp->pid, SIGTERM);
        double t0 = lc_time_sec();
        while (lc_server_alive(sp) && lc_time_sec() - t0 < grace_s) sleep_sec(0.05);
        if (!sp->exited) {
            kill(-sp->pid, SIGKILL);
            int status;
            if (waitpid(sp->pid, &status, 0) == sp->pid) {
                sp->exited = 1;
                sp->status = status;
            }
        }
    }
    kill(-sp->pid, SIGKILL); /* anything the shell left behind in the group */
    sp->pid = 0;
}
