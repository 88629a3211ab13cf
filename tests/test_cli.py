"""The foundation commands: sites, secrets, users, tokens, and their one-sentence errors."""

import subprocess
import sys

import click
from sqlalchemy import select

from tracker.cli import main
from tracker.console import user_errors
from tracker.errors import SiteError
from tracker.models import ApiToken, Site, User, WebhookSecret


def test_sites_add_prints_site_id_last(runner, session):
    result = runner.invoke(
        main, ["sites", "add", "shop.example", "--timezone", "America/New_York", "--currency", "usd"]
    )
    assert result.exit_code == 0, result.output
    site_id = result.stdout.strip().splitlines()[-1]
    site = session.scalar(select(Site).where(Site.public_id == site_id))
    assert site.domain == "shop.example"
    assert site.timezone == "America/New_York"
    assert site.currency == "USD"


def _assert_one_sentence_error(result, *fragments):
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    for fragment in fragments:
        assert fragment in message


def test_unknown_timezone_is_one_sentence(runner):
    result = runner.invoke(main, ["sites", "add", "shop.example", "--timezone", "Mars/Olympus"])
    _assert_one_sentence_error(result, "Mars/Olympus", "time zone")


def test_a_zone_postgresql_does_not_know_is_refused_there(runner, monkeypatch, database_backend):
    """Python's zone data may be newer than the database's; on PostgreSQL, which dates visits in
    the site's zone itself, such a site is refused in one sentence (SQLite takes it)."""
    monkeypatch.setattr("tracker.sites.check_timezone", lambda name: name)  # as if Python knew it
    result = runner.invoke(main, ["sites", "add", "shop.example", "--timezone", "Mars/Olympus"])
    if database_backend == "postgresql":
        _assert_one_sentence_error(result, "does not know the time zone 'Mars/Olympus'")
    else:
        assert result.exit_code == 0, result.output


def test_unknown_currency_is_one_sentence(runner):
    result = runner.invoke(main, ["sites", "add", "shop.example", "--currency", "XYZ"])
    _assert_one_sentence_error(result, "XYZ")


def test_duplicate_domain_is_one_sentence(runner):
    assert runner.invoke(main, ["sites", "add", "shop.example"]).exit_code == 0
    result = runner.invoke(main, ["sites", "add", "SHOP.example"])
    _assert_one_sentence_error(result, "already exists")


def test_secret_for_unknown_site_is_one_sentence(runner):
    result = runner.invoke(main, ["sites", "secret", "nope", "shopify", "s3cret"])
    _assert_one_sentence_error(result, "nope")


def test_secret_rotation_keeps_two(runner, session):
    site_id = runner.invoke(main, ["sites", "add", "shop.example"]).stdout.strip().splitlines()[-1]
    for secret in ("first", "second", "third"):
        result = runner.invoke(main, ["sites", "secret", site_id, "shopify", secret])
        assert result.exit_code == 0, result.output
    kept = session.scalars(select(WebhookSecret.secret).order_by(WebhookSecret.id)).all()
    assert kept == ["second", "third"]


def test_orders_secret_that_does_not_decode_is_refused_and_keeps_the_old_ones(runner, session):
    site_id = runner.invoke(main, ["sites", "add", "shop.example"]).stdout.strip().splitlines()[-1]
    good = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    assert runner.invoke(main, ["sites", "secret", site_id, "orders", good]).exit_code == 0
    for bad in ("whsec_not*base64!", "whsec_abc"):
        result = runner.invoke(main, ["sites", "secret", site_id, "orders", bad])
        _assert_one_sentence_error(result, "base64")
    assert session.scalars(select(WebhookSecret.secret)).all() == [good]


def test_unknown_provider_is_rejected(runner):
    site_id = runner.invoke(main, ["sites", "add", "shop.example"]).stdout.strip().splitlines()[-1]
    result = runner.invoke(main, ["sites", "secret", site_id, "paypal", "x"])
    assert result.exit_code != 0
    assert "Traceback" not in result.output


def test_user_password_is_not_stored_in_clear(runner, session):
    result = runner.invoke(main, ["users", "add", "Owner@Shop.Example"], input="correct horse battery\n")
    assert result.exit_code == 0, result.output
    user = session.scalars(select(User)).one()
    assert user.email == "owner@shop.example"
    assert "correct horse battery" not in user.password_hash
    assert user.password_hash.startswith(("scrypt:", "pbkdf2:"))


def test_short_password_is_refused(runner):
    result = runner.invoke(main, ["users", "add", "owner@shop.example"], input="short\n")
    _assert_one_sentence_error(result, "at least")


def test_token_is_printed_once_and_stored_hashed(runner, session):
    result = runner.invoke(main, ["tokens", "add", "nightly export"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert len(token) > 30
    row = session.scalars(select(ApiToken)).one()
    assert token not in (row.token_hash, row.prefix, row.name)
    assert row.token_hash != token


def test_unmigrated_database_says_what_to_do(tmp_path):
    from click.testing import CliRunner

    env = {"TRACKER_DATABASE_URL": f"sqlite:///{tmp_path}/empty.db", "TRACKER_SECRET_KEY": "x" * 32}
    result = CliRunner(env=env).invoke(main, ["sites", "add", "shop.example"])
    _assert_one_sentence_error(result, "tracker db upgrade")


def test_bad_configuration_names_the_variable(tmp_path):
    from click.testing import CliRunner

    env = {"TRACKER_DATABASE_URL": "mysql://x/y", "TRACKER_INSTANCE_PATH": str(tmp_path)}
    result = CliRunner(env=env).invoke(main, ["sites", "add", "shop.example"])
    _assert_one_sentence_error(result, "TRACKER_DATABASE_URL")


def test_only_expected_errors_become_a_sentence_a_bug_keeps_its_traceback(runner):
    """A TrackerError is the user's to fix: one sentence, exit 1. Anything else is a bug: the
    command fails with its traceback instead of a message that hides it."""
    @click.command()
    @click.argument("what")
    @user_errors
    def fails(what):
        if what == "mistake":
            raise SiteError("No site 'x'; `tracker sites add DOMAIN` creates one.")
        raise ValueError("an unexpected bug")

    _assert_one_sentence_error(runner.invoke(fails, ["mistake"]), "No site 'x'")
    bug = runner.invoke(fails, ["bug"])
    assert bug.exit_code == 1 and isinstance(bug.exception, ValueError)
    assert "an unexpected bug" not in bug.stderr  # not dressed up as a user error


def test_help_lists_every_group_of_commands_with_its_summary(runner):
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    for name, summary in (("claims", "Import what SMS and email platforms report"), ("db", "schema"),
                          ("people", "erase it"), ("reports", ""), ("tokens", "API tokens"),
                          ("users", "Manage the people"), ("webhooks", ""), ("demo", "")):
        line = next((row for row in result.output.splitlines() if row.strip().startswith(name + " ")), None)
        assert line is not None and summary in line, f"{name}: {line!r}"
    unknown = runner.invoke(main, ["report", "build"])
    assert unknown.exit_code == 2 and "No such command 'report'" in unknown.output


def test_the_nightly_build_command_starts_without_the_web_and_mail_modules():
    """`tracker reports build`, run by cron every morning, loads only what it uses: not Flask (the
    server's), not Jinja2 (the digest's), not the webhook parsers."""
    probe = ("import sys\nfrom tracker.cli import main\n"
             "try:\n    main(['reports', 'build', '--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('flask', 'jinja2', 'tracker.webhooks.shopify', 'tracker.access')"
             " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]", out


def test_collections_are_paused_only_while_the_command_loads():
    """The command line starts without garbage collections while its modules load; the command
    itself (a server, an import of millions of rows) runs with them, or its memory would only grow.
    When they resume, what the modules made is frozen: the command's first collection does not walk
    the hundreds of thousands of objects made meanwhile."""
    probe = ("import atexit, gc, sys\n"
             "resume = gc.enable\n"
             "def enable():\n"
             "    print('young', gc.get_count()[0], 'frozen', gc.get_freeze_count())\n"
             "    resume()\n"
             "gc.enable = enable\n"
             "atexit.register(lambda: print('on' if gc.isenabled() else 'off'))\n"
             "sys.argv = ['tracker', *sys.argv[1:]]\n"
             "from tracker.__main__ import run\nrun()\n")
    for command in (["reports", "build", "--help"], ["sites", "--help"], ["no-such-command"]):
        done = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True)
        lines = done.stdout.strip().splitlines()
        assert lines[-1] == "on", (command, done.stdout, done.stderr)
        _, young, _, frozen = next(line for line in lines if line.startswith("young ")).split()
        assert int(young) < 1000 and int(frozen) > 100_000, (command, young, frozen)
