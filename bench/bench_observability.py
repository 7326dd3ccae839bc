"""In-process cost of the RequestObserver middleware (request id, X-Request-ID, HTTP metrics) per
request, against the same trivial ASGI app without it, measured in the same run. Run:
.venv/bin/python bench/bench_observability.py"""
import asyncio, time
from mlservice.observability.metrics import Metrics, RequestObserver
class R: path="/models/{model_key}/predict"
async def app(scope, receive, send):
    scope["route"]=R
    await send({"type":"http.response.start","status":200,"headers":[]})
    await send({"type":"http.response.body","body":b"{}"})
async def send(m): pass
async def receive(): return {"type":"http.request","body":b""}
class DB: is_sqlite=True
obs=RequestObserver(app, Metrics(DB()))
def scope(): return {"type":"http","method":"POST","path":"/models/adult/predict","headers":[(b"host",b"x"),(b"authorization",b"Bearer abc"),(b"content-type",b"application/json")]}
async def run(a,n):
    t=time.perf_counter()
    for _ in range(n): await a(scope(),receive,send)
    return (time.perf_counter()-t)/n*1e6
async def main():
    for _ in range(3):
        base=await run(app,50000); wrapped=await run(obs,50000)
        print(f"bare {base:.2f} us, with RequestObserver {wrapped:.2f} us, cost {wrapped-base:.2f} us/request")
asyncio.run(main())
