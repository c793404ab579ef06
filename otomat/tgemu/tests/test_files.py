"""Photos and documents: uploads, file_id reuse, getFile, downloads, limits and bad input."""

from __future__ import annotations

import urllib.request

from otomat.tgemu import Limits
from otomat.tgemu.testing import EmulatorServer, png

from .conftest import ALICE


def download(emu: EmulatorServer, path: str) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(emu.url + path, timeout=10) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def test_a_bot_sends_a_photo_and_reuses_its_file_id(emu, started):
    token = started["token"]
    image = png(64, 48)
    status, body = emu.upload(
        token,
        "sendPhoto",
        {"photo": ("cat.png", image, "image/png")},
        chat_id=ALICE,
        caption="<b>Cat</b>",
        parse_mode="HTML",
    )
    assert status == 200, body
    message = body["result"]
    [size] = message["photo"]
    assert (size["width"], size["height"], size["file_size"]) == (64, 48, len(image))
    assert message["caption"] == "Cat"
    assert message["caption_entities"] == [{"type": "bold", "offset": 0, "length": 3}]
    assert "text" not in message

    status, again = emu.bot_api(token, "sendPhoto", chat_id=ALICE, photo=size["file_id"])
    assert status == 200 and again["result"]["photo"][0]["file_id"] == size["file_id"]

    status, info = emu.bot_api(token, "getFile", file_id=size["file_id"])
    assert status == 200
    assert info["result"]["file_size"] == len(image)
    code, data, headers = download(emu, f"/file/bot{token}/{info['result']['file_path']}")
    assert code == 200 and data == image
    # The web chat's route serves the same bytes without the token.
    code, data, headers = download(emu, f"/control/files/{size['file_id']}")
    assert (code, data, headers["Content-Type"]) == (200, image, "image/png")


def test_a_bot_sends_a_document(emu, started):
    token = started["token"]
    status, body = emu.upload(
        token,
        "sendDocument",
        {"document": ("report.csv", b"a,b\n1,2\n", "text/csv")},
        chat_id=ALICE,
    )
    assert status == 200, body
    document = body["result"]["document"]
    assert document["file_name"] == "report.csv" and document["mime_type"] == "text/csv"
    assert document["file_size"] == 8
    code, data, headers = download(emu, f"/control/files/{document['file_id']}")
    assert code == 200 and data == b"a,b\n1,2\n"
    assert headers["Content-Disposition"] == 'attachment; filename="report.csv"'
    assert headers["Content-Type"] == "application/octet-stream"  # never rendered by a browser
    [message] = emu.messages("greeter_bot", ALICE, after=1)
    assert message["document"]["file_id"] == document["file_id"] and message["from_bot"]


def test_file_errors_use_telegrams_wording_and_change_nothing(emu, started):
    token = started["token"]

    def send(method: str, **params):
        return emu.bot_api(token, method, chat_id=ALICE, **params)

    assert send("sendPhoto", photo="https://example.com/cat.jpg")[1]["description"].startswith(
        "Bad Request: failed to get HTTP URL content"
    )
    assert send("sendPhoto", photo="AgACnope")[1]["description"] == (
        "Bad Request: wrong file identifier/HTTP URL specified"
    )
    assert send("sendPhoto")[1]["description"] == "Bad Request: there is no photo in the request"
    status, body = emu.upload(
        token, "sendPhoto", {"photo": ("x.png", b"not an image", "image/png")}, chat_id=ALICE
    )
    assert (status, body["description"]) == (400, "Bad Request: IMAGE_PROCESS_FAILED")
    status, body = emu.upload(
        token, "sendPhoto", {"photo": ("x.png", png(400, 10), "image/png")}, chat_id=ALICE
    )
    assert (status, body["description"]) == (400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
    status, body = emu.upload(
        token, "sendDocument", {"document": ("a.txt", b"hi", "text/plain")}, chat_id=ALICE
    )
    doc_id = body["result"]["document"]["file_id"]
    assert send("sendPhoto", photo=doc_id)[1]["description"] == (
        "Bad Request: can't use file of type Document as Photo"
    )
    assert emu.bot_api(token, "getFile", file_id="nope")[1]["description"] == (
        "Bad Request: invalid file_id"
    )
    assert emu.bot_api(token, "getFile")[1]["description"] == "Bad Request: file_id is empty"
    assert download(emu, f"/file/bot{token}/photos/none.jpg")[0] == 404
    assert download(emu, "/file/bot1:wrong/documents/file_0.txt")[0] == 401
    # Only the one good document was stored and sent.
    assert len(emu.state.files.files) == 1
    assert [m.get("document", {}).get("file_id") for m in emu.messages("greeter_bot", ALICE)][
        -1
    ] == doc_id


def test_size_limits_answer_413_and_getfile_refuses_big_files():
    limits = Limits(max_upload_bytes=2000, max_photo_bytes=1000, max_download_bytes=500)
    with EmulatorServer(limits=limits) as emu:
        token = emu.create_bot("greeter_bot")["token"]
        emu.send("greeter_bot", user_id=ALICE, text="/start")
        status, body = emu.upload(
            token, "sendDocument", {"document": ("big.bin", b"x" * 3000, "x/y")}, chat_id=ALICE
        )
        assert (status, body["description"]) == (413, "Request Entity Too Large")
        big_photo = png(300, 300, (1, 2, 3)) + b"\0" * 300  # ~1.2 kB
        status, body = emu.upload(
            token, "sendPhoto", {"photo": ("p.png", big_photo, "image/png")}, chat_id=ALICE
        )
        assert status == 400 and "photo is too big" in body["description"]
        status, body = emu.upload(
            token, "sendDocument", {"document": ("m.bin", b"x" * 800, "x/y")}, chat_id=ALICE
        )
        assert status == 200
        file_id = body["result"]["document"]["file_id"]
        status, body = emu.bot_api(token, "getFile", file_id=file_id)
        assert (status, body["description"]) == (400, "Bad Request: file is too big")


def test_the_store_is_bounded_and_forgets_the_oldest_files():
    with EmulatorServer(limits=Limits(max_files=2)) as emu:
        token = emu.create_bot("greeter_bot")["token"]
        emu.send("greeter_bot", user_id=ALICE, text="/start")
        ids = []
        for n in range(3):
            _status, body = emu.upload(
                token, "sendDocument", {"document": (f"{n}.txt", b"n", "text/plain")}, chat_id=ALICE
            )
            ids.append(body["result"]["document"]["file_id"])
        assert emu.bot_api(token, "getFile", file_id=ids[0])[0] == 400
        assert emu.bot_api(token, "getFile", file_id=ids[2])[0] == 200


def test_a_person_sends_a_photo_and_the_bot_downloads_it(emu, bot):
    image = png(20, 30)
    message = emu.send_file(
        "greeter_bot",
        user_id=ALICE,
        kind="photo",
        data=image,
        filename="me.png",
        content_type="image/png",
        caption="look",
    )
    assert message["photo"][0]["width"] == 20 and message["caption"] == "look"
    _status, body = emu.bot_api(bot["token"], "getUpdates")
    [update] = body["result"]
    file_id = update["message"]["photo"][-1]["file_id"]
    _status, info = emu.bot_api(bot["token"], "getFile", file_id=file_id)
    assert download(emu, f"/file/bot{bot['token']}/{info['result']['file_path']}")[1] == image


def test_bad_person_uploads_are_refused_and_change_nothing(emu, bot):
    path = "/control/bots/greeter_bot/files"
    status, body = emu.multipart(
        path, {"user_id": ALICE, "kind": "video"}, {"file": ("a", b"1", "x/y")}
    )
    assert (status, body["description"]) == (
        400,
        'Bad Request: field "kind" must be "photo" or "document"',
    )
    status, body = emu.multipart(
        path, {"user_id": ALICE, "kind": "photo"}, {"file": ("a", b"1", "x/y")}
    )
    assert (status, body["description"]) == (400, "Bad Request: IMAGE_PROCESS_FAILED")
    status, body = emu.multipart(path, {"kind": "photo"}, {"file": ("a", png(5, 5), "image/png")})
    assert status == 400 and "user_id" in body["description"]
    status, body = emu.request("POST", path, {"user_id": ALICE, "kind": "photo"})
    assert status == 400 and "multipart" in body["description"]
    assert emu.state.users == {} and len(emu.state.files.files) == 0
    assert emu.bot_api(bot["token"], "getUpdates")[1]["result"] == []


def test_unknown_files_are_404_on_the_web_chat_route(emu):
    code, body, _ = download(emu, "/control/files/AgACnope")
    assert code == 404 and b"unknown file" in body
