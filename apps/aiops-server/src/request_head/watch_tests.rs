use super::*;

fn feed_all(watch: &mut HeadWatch, chunks: &[&[u8]]) -> Result<(), (usize, Overrun)> {
    let mut offset = 0;
    for chunk in chunks {
        watch
            .feed(chunk)
            .map_err(|(at, overrun)| (offset + at, overrun))?;
        offset += chunk.len();
    }
    Ok(())
}

fn get_with_target(length: usize) -> Vec<u8> {
    let mut request = b"GET /".to_vec();
    request.extend(std::iter::repeat_n(b'a', length - 1));
    request.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
    request
}

#[test]
fn a_target_at_the_limit_passes_and_one_byte_more_is_stopped_at_that_byte() {
    assert_eq!(
        HeadWatch::new().feed(&get_with_target(MAX_TARGET_BYTES)),
        Ok(())
    );
    let request = get_with_target(MAX_TARGET_BYTES + 1);
    assert_eq!(
        HeadWatch::new().feed(&request),
        Err((4 + MAX_TARGET_BYTES, Overrun::Target))
    );
}

#[test]
fn the_target_is_followed_across_reads_of_any_size() {
    let request = get_with_target(MAX_TARGET_BYTES + 10);
    let chunks: Vec<&[u8]> = request.chunks(7).collect();
    assert_eq!(
        feed_all(&mut HeadWatch::new(), &chunks),
        Err((4 + MAX_TARGET_BYTES, Overrun::Target))
    );
}

#[test]
fn too_many_header_fields_are_stopped_at_the_first_field_past_the_limit() {
    let mut request = b"GET / HTTP/1.1\r\n".to_vec();
    for index in 0..MAX_HEADERS {
        request.extend_from_slice(format!("x-h{index}: v\r\n").as_bytes());
    }
    let at = request.len();
    let mut ok = request.clone();
    ok.extend_from_slice(b"\r\n");
    assert_eq!(HeadWatch::new().feed(&ok), Ok(()));
    request.extend_from_slice(b"x-one-more: v\r\n\r\n");
    assert_eq!(
        HeadWatch::new().feed(&request),
        Err((at, Overrun::HeaderCount))
    );
}

#[test]
fn a_head_over_its_size_is_stopped() {
    let mut request = b"GET / HTTP/1.1\r\nx-big: ".to_vec();
    request.extend(std::iter::repeat_n(b'v', MAX_HEAD_BYTES));
    request.extend_from_slice(b"\r\n\r\n");
    assert_eq!(
        HeadWatch::new().feed(&request),
        Err((MAX_HEAD_BYTES, Overrun::HeadSize))
    );
}

#[test]
fn bodies_are_skipped_whatever_they_hold_and_the_next_request_is_followed() {
    // A body of newline-free bytes longer than any limit, then a request over the limit.
    let body = vec![b'z'; 3 * MAX_HEAD_BYTES];
    let mut stream = format!(
        "POST /v1/traces HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    stream.extend_from_slice(&body);
    let second = stream.len();
    stream.extend_from_slice(&get_with_target(MAX_TARGET_BYTES + 1));
    assert_eq!(
        HeadWatch::new().feed(&stream),
        Err((second + 4 + MAX_TARGET_BYTES, Overrun::Target))
    );
}

#[test]
fn chunked_bodies_are_skipped_chunk_by_chunk() {
    let chunk = vec![b'z'; 2 * MAX_HEAD_BYTES];
    let mut stream = b"POST /v1/traces HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    stream.extend_from_slice(format!("{:x};ext=1\r\n", chunk.len()).as_bytes());
    stream.extend_from_slice(&chunk);
    stream.extend_from_slice(b"\r\n3\r\nabc\r\n0\r\nx-trailer: t\r\n\r\n");
    let second = stream.len();
    stream.extend_from_slice(&get_with_target(MAX_TARGET_BYTES + 1));
    let chunks: Vec<&[u8]> = stream.chunks(1000).collect();
    assert_eq!(
        feed_all(&mut HeadWatch::new(), &chunks),
        Err((second + 4 + MAX_TARGET_BYTES, Overrun::Target))
    );
}

#[test]
fn framing_it_cannot_read_turns_the_watch_off() {
    for header in [
        "Content-Length: 12abc",
        "Transfer-Encoding: gzip",
        "Upgrade: websocket",
    ] {
        let mut stream = format!("POST / HTTP/1.1\r\n{header}\r\n\r\n").into_bytes();
        stream.extend_from_slice(&get_with_target(MAX_TARGET_BYTES + 1));
        assert_eq!(HeadWatch::new().feed(&stream), Ok(()), "{header}");
    }
}

#[test]
fn keep_alive_requests_without_bodies_follow_one_another() {
    let mut stream =
        b"\r\nGET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nContent-Length: 0\r\n\r\n".to_vec();
    let third = stream.len();
    stream.extend_from_slice(&get_with_target(MAX_TARGET_BYTES + 1));
    assert_eq!(
        HeadWatch::new().feed(&stream),
        Err((third + 4 + MAX_TARGET_BYTES, Overrun::Target))
    );
}

#[test]
fn the_first_head_is_done_at_its_empty_line() {
    let mut watch = HeadWatch::new();
    assert!(!watch.first_head_done());
    watch
        .feed(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n")
        .unwrap();
    assert!(!watch.first_head_done());
    assert!(watch.in_head());
    watch.feed(b"\r\nab").unwrap();
    assert!(watch.first_head_done());
    assert!(!watch.in_head());
    watch.feed(b"c\r\n").unwrap();
    assert!(!watch.in_head(), "empty lines between requests");
    watch.feed(b"G").unwrap();
    assert!(watch.in_head());
}
