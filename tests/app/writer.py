"""The app under migration, as a real process: it keeps writing users, ideas and analyses
through the app's own models, to whatever ``DATABASE_URL`` its ``.env`` names when it
starts, and logs every committed write (one line per user's telegram_id), so a test can
check that not one write was lost. Now and then it updates an old row, and deletes an
analysis it wrote a few writes earlier (not logged: the migration's own verification
proves deletes kept).

    python tests/app/writer.py APP_DIR          # runs until SIGTERM
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.app.models import Analysis, AnalysisStatus, Idea, User, make_engine, make_session_factory  # noqa: E402


def main(app_dir):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    engine = make_engine(env_file=os.path.join(app_dir, ".env"))
    session_factory = make_session_factory(engine)
    log_path = os.path.join(app_dir, "writes.log")
    n = 0
    own_analyses = []
    with open(log_path, "a", buffering=1) as log:
        log.write(f"# start pid={os.getpid()} url={engine.url.drivername}\n")
        while not stop:
            tid = f"w{os.getpid()}-{n}"
            with session_factory() as session:
                user = User(telegram_id=tid, username="writer")
                session.add(user)
                session.flush()
                idea = Idea(user_id=user.id, text=f"idea of {tid}")
                session.add(idea)
                session.flush()
                analysis = Analysis(idea_id=idea.id, user_id=user.id, status=AnalysisStatus.DONE, tokens_used=n)
                session.add(analysis)
                session.flush()
                own_analyses.append(analysis.id)
                if n % 10 == 9:   # now and then the app changes an old row too
                    old = session.get(Analysis, 1 + n % 50)
                    if old is not None:
                        old.tokens_used = (old.tokens_used or 0) + 1
                if n % 10 == 4 and len(own_analyses) > 5:   # and deletes one it wrote a moment ago
                    gone = session.get(Analysis, own_analyses.pop(-6))
                    if gone is not None:
                        session.delete(gone)
                session.commit()
            log.write(tid + "\n")   # only after the commit
            n += 1
            time.sleep(0.01)
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1])
