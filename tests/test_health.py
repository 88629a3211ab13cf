"""GET /healthz answers for load balancers."""

from tracker.app import create_app


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_healthz_unavailable_database(tmp_path):
    app = create_app(
        {
            "TRACKER_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
            "TRACKER_SECRET_KEY": "x" * 32,
            "TRACKER_INSTANCE_PATH": str(tmp_path),
        }
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert "error" in response.get_json()


def test_unknown_api_path_is_json(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert "error" in response.get_json()
