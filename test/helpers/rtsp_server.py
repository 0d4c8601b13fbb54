#!/usr/bin/python3
"""Loopback RTSP server for the io tests: serves one H.264 mp4 on 127.0.0.1.

Run with Debian's /usr/bin/python3: the GStreamer bindings (python3-gi, gir1.2-gst-rtsp-server-1.0)
are Debian packages and are invisible to a pyenv or venv interpreter.

Prints "READY <port>" on stdout once clients can connect (so the caller never races the bind, and
port 0 lets the OS pick a free one). SIGUSR1 pauses every running pipeline, SIGUSR2 resumes them:
the connection stays open and silent, which is how a hung camera looks to a client.

It plays its file once, from the start, for each client: rtspServer.ts hands it a copy of the clip
looped for minutes beforehand. (It used to loop by seeking the demuxer itself; a seek of ours that
met the server's own seek on PLAY now and then answered PLAY with 503 and, rarely, left a shared
media stuck without frames for every later client.) Each client gets its own pipeline, so whatever
happens to one stream never reaches the next connection.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--file", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mount", default="/stream")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))

    factory = GstRtspServer.RTSPMediaFactory()
    # The location goes through GStreamer's launch parser; quoting keeps spaces in paths intact.
    location = args.file.replace("\\", "\\\\").replace('"', '\\"')
    factory.set_launch(
        f'( filesrc location="{location}" ! qtdemux name=d d.video_0 ! h264parse '
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(False)

    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password or ""), token)
        server.set_auth(auth)
        factory.add_role_from_structure(
            Gst.Structure.from_string(
                "viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )[0]
        )

    medias = []

    def on_configure(_factory, media):
        medias.append(media)
        media.connect("unprepared", lambda m: medias.remove(m) if m in medias else None)

    factory.connect("media-configure", on_configure)
    server.get_mount_points().add_factory(args.mount, factory)

    loop = GLib.MainLoop()

    def set_all(state):
        for media in list(medias):
            element = media.get_element()
            pipeline = element.get_parent() if element else None
            if pipeline:
                pipeline.set_state(state)
        return True

    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, set_all, Gst.State.PAUSED)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR2, set_all, Gst.State.PLAYING)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or False)

    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        sys.exit(2)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
