"""Cameras: why a stream is down (``fault.*``, the codes of adapters/rtsp/faults.py), what is wrong
with a stream address (``url.*``, gateway/config/stream_url.py), and the test-connection answer."""

TEXT: dict[str, dict[str, str]] = {
    # --- stream faults: what the list and detail pages show next to 故障 --------------------------
    "fault.unreachable": {
        "zh": "无法连接摄像机：网络不通或超时，请检查 IP 地址、网线和防火墙",
        "en": "camera unreachable: no answer from its address (check the IP address, cabling and firewall)",
    },
    "fault.refused": {
        "zh": "连接被拒绝：该端口没有 RTSP 服务，请检查端口号（通常为 554）",
        "en": "connection refused: nothing listens on that port (check the port, usually 554)",
    },
    "fault.unauthorized": {
        "zh": "用户名或密码错误（401），请在地址中填写正确的账号",
        "en": "wrong user name or password (401): put the right credentials in the address",
    },
    "fault.forbidden": {
        "zh": "摄像机拒绝访问（403），请检查该账号的权限",
        "en": "access denied by the camera (403): check the account's permissions",
    },
    "fault.not_found": {
        "zh": "码流路径不存在（404），请检查地址中的路径或通道号",
        "en": "stream path not found (404): check the path or channel in the address",
    },
    "fault.unknown_host": {
        "zh": "无法解析主机名，请检查地址中的主机名或改用 IP 地址",
        "en": "host name not found: check the host in the address or use the IP address",
    },
    "fault.bad_scheme": {
        "zh": "地址协议不受支持，请使用 rtsp://、rtsps://、gb28181:// 或视频文件路径",
        "en": "unsupported address scheme: use rtsp://, rtsps://, gb28181:// or a video file path",
    },
    "fault.not_video": {
        "zh": "该地址不是视频流（没有视频轨道或数据无法识别）",
        "en": "the address is not a video stream (no video track, or data that cannot be read)",
    },
    "fault.file_missing": {
        "zh": "视频文件不存在，请检查路径",
        "en": "video file not found: check the path",
    },
    "fault.stalled": {
        "zh": "视频流中断：长时间没有收到画面，正在重连",
        "en": "stream stalled: no picture for a while; reconnecting",
    },
    "fault.ended": {
        "zh": "视频流已结束，正在重连",
        "en": "the stream ended; reconnecting",
    },
    "fault.tls": {
        "zh": "加密连接（TLS）失败，请检查证书或改用 rtsp://",
        "en": "secure connection (TLS) failed: check the certificate, or use rtsp://",
    },
    "fault.other": {  # not one of the known stream faults (e.g. the camera could not start): the detail
        "zh": "故障：{detail}",
        "en": "fault: {detail}",
    },
    "fault.no_picture": {
        "zh": "摄像机暂无画面",
        "en": "the camera has no current picture",
    },
    "fault.no_picture_because": {
        "zh": "摄像机暂无画面：{reason}",
        "en": "the camera has no current picture: {reason}",
    },
    "fault.live_unsupported": {
        "zh": "该摄像机的码流无法直接在浏览器中播放，改为显示快照",
        "en": "this camera's stream cannot be played live in a browser; showing snapshots",
    },
    "fault.gb_not_playing": {
        "zh": "国标通道当前未在点播：为它配置并启用算法场景后，网关会向设备点播，即可查看画面",
        "en": "this GB/T 28181 channel is not being played: give it an enabled scene and the gateway "
        "plays it from the device; then its picture can be seen",
    },
    "fault.h265": {
        "zh": "H.265 码流浏览器无法直接播放，改为显示快照",
        "en": "H.265 cannot be played by browsers without transcoding; showing snapshots",
    },
    # --- stream addresses (config, API, console) ---------------------------------------------------
    "url.empty": {"zh": "请填写视频流地址", "en": "enter the stream address"},
    "url.too_long": {
        "zh": "地址过长（最多 {limit} 个字符）",
        "en": "the address is too long (at most {limit} characters)",
    },
    "url.no_scheme": {
        "zh": "缺少协议：请写成 rtsp://{url}",
        "en": "the address has no scheme: write it as rtsp://{url}",
    },
    "url.bad_scheme": {
        "zh": "不支持的协议 “{scheme}://”：请使用 rtsp://、rtsps://、gb28181:// 或 file://{hint}",
        "en": "unsupported scheme '{scheme}://': use rtsp://, rtsps://, gb28181:// or file://{hint}",
    },
    "url.did_you_mean": {"zh": "（是否应为 {scheme}://？）", "en": " (did you mean {scheme}://?)"},
    "url.no_host": {
        "zh": "地址中缺少主机（IP 地址或主机名）",
        "en": "the address has no host (IP address or host name)",
    },
    "url.bad_host": {
        "zh": "主机 “{host}” 不是有效的 IP 地址或主机名",
        "en": "'{host}' is not a valid IP address or host name",
    },
    "url.bad_port": {
        "zh": "端口必须是 1 到 65535 之间的数字",
        "en": "the port must be a number from 1 to 65535",
    },
    "url.gb_form": {
        "zh": "国标地址应为 gb28181://设备编号/通道编号",
        "en": "a GB/T 28181 address is gb28181://DEVICE/CHANNEL",
    },
    "url.no_file": {"zh": "file:// 后缺少文件路径", "en": "file:// needs a file path after it"},
    "url.not_a_path": {
        "zh": "“{url}” 既不是 rtsp:// 地址，也不是视频文件路径",
        "en": "'{url}' is neither an rtsp:// address nor a video file path",
    },
    "url.spaces": {
        "zh": "地址中不能有空格或控制字符",
        "en": "the address must not contain spaces or control characters",
    },
    # --- test connection ---------------------------------------------------------------------------
    "probe.ok": {
        "zh": "连接成功：{codec} {width}×{height}，{fps} 帧/秒",
        "en": "connected: {codec} {width}x{height} at {fps} fps",
    },
    "probe.gb": {
        "zh": "国标通道由国标服务拉流，无法在此直接测试；请在国标设备页面查看设备是否在线",
        "en": "a GB/T 28181 channel is played by the GB service and cannot be tested here; "
        "check that its device is online on the GB/T 28181 page",
    },
}
